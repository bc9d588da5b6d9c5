rule figures:
    input:
        summary="results/summary.csv",
        coverage="results/coverage.csv",
    output:
        figure_files(),
    log:
        "logs/figures.log",
    benchmark:
        "logs/benchmarks/figures.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        formats=" ".join(config["figures"]["formats"]),
    shell:
        "python -m bnre figures --summary {input.summary} --coverage {input.coverage}"
        " --outdir figures --formats {params.formats} > {log} 2>&1"
