rule figures:
    input:
        summary=path("summary"),
        coverage=path("coverage"),
        calibration=path("calibration"),
    output:
        figure_files(report_them=True),
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
        " --calibration {input.calibration} --outdir figures --formats {params.formats} > {log} 2>&1"


rule training_figures:
    input:
        history_files(),
    output:
        training_figure_files(report_them=True),
    log:
        "logs/training_figures.log",
    benchmark:
        "logs/benchmarks/training_figures.tsv"
    conda:
        "../envs/figures.yaml"
    threads: job_threads("figures")
    resources:
        runtime=job_runtime("figures"),
        mem_mb=job_mem_mb("figures"),
        gpu=job_gpus("figures"),
    params:
        code=package_code("training-figures"),
        formats=" ".join(config["figures"]["formats"]),
    shell:
        "python -m bnre training-figures --outdir figures {input}"
        " --formats {params.formats} > {log} 2>&1"


rule posterior_figure:
    input:
        # an example, from the first seed's test pairs and models
        test=path("split", split="test", seed=SEEDS[0]),
        models=lambda wildcards: expand(
            path("model"),
            seed=SEEDS[0],
            task=wildcards.task,
            method=METHODS,
            budget=max(BUDGETS),
        ),
    output:
        posterior_outputs(),
    log:
        "logs/posterior_figure/{task}.log",
    benchmark:
        "logs/benchmarks/posterior_figure/{task}.tsv"
    conda:
        "../envs/posterior_figure.yaml"
    threads: job_threads("figures")
    resources:
        runtime=job_runtime("figures"),
        mem_mb=job_mem_mb("figures"),
        gpu=job_gpus("figures"),
    params:
        code=package_code("posterior-figure"),
        task=task_source,
        formats=" ".join(config["figures"]["formats"]),
        pair=config["figures"]["posterior_pair"],
        options=evaluation_options("posterior-figure"),
    shell:
        "python -m bnre posterior-figure --test {input.test} --pair {params.pair}"
        " --options {params.options:q} --output figures/posterior_{wildcards.task}"
        " --task {params.task:q} {input.models} --formats {params.formats} > {log} 2>&1"
