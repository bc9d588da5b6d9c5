rule aggregate_summary:
    input:
        evaluation_tables("metrics"),
    output:
        "results/summary.csv",
    log:
        "logs/aggregate/summary.log",
    benchmark:
        "logs/benchmarks/aggregate/summary.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m bnre aggregate --output {output} {input} > {log} 2>&1"


rule aggregate_coverage:
    input:
        evaluation_tables("coverage"),
    output:
        "results/coverage.csv",
    log:
        "logs/aggregate/coverage.log",
    benchmark:
        "logs/benchmarks/aggregate/coverage.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m bnre aggregate --output {output} {input} > {log} 2>&1"
