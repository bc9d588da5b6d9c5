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
    threads: job_threads("figures")
    resources:
        runtime=job_runtime("figures"),
        mem_mb=job_mem_mb("figures"),
        gpu=job_gpus("figures"),
    params:
        code=package_code("figures"),
        formats=" ".join(config["figures"]["formats"]),
    shell:
        "python -m bnre figures --summary {input.summary} --coverage {input.coverage}"
        " --outdir figures --formats {params.formats} > {log} 2>&1"
