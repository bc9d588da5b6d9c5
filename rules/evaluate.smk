rule evaluate:
    input:
        model=path("model"),
        test=path("split", split="test"),
    output:
        metrics=path("result", kind="metrics"),
        coverage=path("result", kind="coverage"),
        ranks=path("result", kind="ranks"),
        calibration=path("result", kind="calibration"),
    log:
        "logs/evaluate/{task}/seed{seed}/{method}/{budget}.log",
    benchmark:
        "logs/benchmarks/evaluate/{task}/seed{seed}/{method}/{budget}.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("evaluate")
    resources:
        runtime=job_runtime("evaluate"),
        mem_mb=job_mem_mb("evaluate"),
        gpu=job_gpus("evaluate"),
    params:
        code=package_code("evaluate"),
        task=task_source,
        options=evaluation_options("evaluate"),
    shell:
        "python -m bnre --threads {threads} evaluate --task {params.task:q}"
        " --model {input.model} --test {input.test} --options {params.options:q}"
        " --metrics {output.metrics} --coverage {output.coverage}"
        " --ranks {output.ranks} --calibration {output.calibration} > {log} 2>&1"


rule evaluate_exact:
    input:
        test=path("split", split="test"),
    output:
        metrics=path("result", method="exact", budget="all", kind="metrics"),
        coverage=path("result", method="exact", budget="all", kind="coverage"),
        ranks=path("result", method="exact", budget="all", kind="ranks"),
        calibration=path("result", method="exact", budget="all", kind="calibration"),
    log:
        "logs/evaluate/{task}/seed{seed}/exact.log",
    benchmark:
        "logs/benchmarks/evaluate/{task}/seed{seed}/exact.tsv"
    conda:
        "../envs/evaluate.yaml"
    threads: job_threads("evaluate")
    resources:
        runtime=job_runtime("evaluate"),
        mem_mb=job_mem_mb("evaluate"),
        gpu=job_gpus("evaluate"),
    params:
        code=package_code("evaluate-exact"),
        task=task_source,
        budgets=" ".join(str(b) for b in BUDGETS),
        options=evaluation_options("evaluate-exact"),
    shell:
        "python -m bnre --threads {threads} evaluate-exact --task {params.task:q}"
        " --test {input.test} --options {params.options:q}"
        " --budgets {params.budgets} --metrics {output.metrics}"
        " --coverage {output.coverage} --ranks {output.ranks}"
        " --calibration {output.calibration} > {log} 2>&1"
