rule aggregate_summary:
    input:
        evaluation_tables("metrics"),
    output:
        report(
            path("summary"),
            caption="report/summary.rst",
            category="Tables",
        ),
    log:
        "logs/aggregate/summary.log",
    benchmark:
        "logs/benchmarks/aggregate/summary.tsv"
    conda:
        "../envs/figures.yaml"
    threads: job_threads("aggregate_summary")
    resources:
        runtime=job_runtime("aggregate_summary"),
        mem_mb=job_mem_mb("aggregate_summary"),
        gpu=job_gpus("aggregate_summary"),
    params:
        code=package_code("aggregate"),
    shell:
        "python -m bnre aggregate --output {output} {input} > {log} 2>&1"


rule aggregate_coverage:
    input:
        evaluation_tables("coverage"),
    output:
        report(
            path("coverage"),
            caption="report/coverage_table.rst",
            category="Tables",
        ),
    log:
        "logs/aggregate/coverage.log",
    benchmark:
        "logs/benchmarks/aggregate/coverage.tsv"
    conda:
        "../envs/figures.yaml"
    threads: job_threads("aggregate_coverage")
    resources:
        runtime=job_runtime("aggregate_coverage"),
        mem_mb=job_mem_mb("aggregate_coverage"),
        gpu=job_gpus("aggregate_coverage"),
    params:
        code=package_code("aggregate"),
    shell:
        "python -m bnre aggregate --output {output} {input} > {log} 2>&1"


rule aggregate_calibration:
    input:
        evaluation_tables("calibration"),
    output:
        report(
            path("calibration"),
            caption="report/calibration_table.rst",
            category="Tables",
        ),
    log:
        "logs/aggregate/calibration.log",
    benchmark:
        "logs/benchmarks/aggregate/calibration.tsv"
    conda:
        "../envs/figures.yaml"
    threads: job_threads("aggregate_coverage")
    resources:
        runtime=job_runtime("aggregate_coverage"),
        mem_mb=job_mem_mb("aggregate_coverage"),
        gpu=job_gpus("aggregate_coverage"),
    params:
        code=package_code("aggregate"),
    shell:
        "python -m bnre aggregate --output {output} {input} > {log} 2>&1"
