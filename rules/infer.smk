rule infer:
    input:
        models=lambda wildcards: expand(
            path("model"),
            seed=wildcards.seed,
            task=wildcards.task,
            method=METHODS,
            budget=INFER_BUDGET,
        ),
        observation=observation_input,
    output:
        observed_outputs(),
        samples=path("observed", kind="samples"),
        intervals=path("observed", kind="intervals"),
    log:
        "logs/infer/{task}/seed{seed}/{observation}.log",
    benchmark:
        "logs/benchmarks/infer/{task}/seed{seed}/{observation}.tsv"
    conda:
        "../envs/infer.yaml"
    threads: job_threads("infer")
    resources:
        runtime=job_runtime("infer"),
        mem_mb=job_mem_mb("infer"),
        gpu=job_gpus("infer"),
    params:
        code=package_code("infer"),
        task=task_source,
        samples=config["infer"]["samples"],
        seed=config["infer"]["seed"],
        options=evaluation_options("infer"),
        formats=" ".join(config["figures"]["formats"]),
    shell:
        "python -m bnre --threads {threads} infer --task {params.task:q}"
        " --model {input.models} --observation {input.observation:q}"
        " --samples {params.samples} --seed {params.seed} --options {params.options:q}"
        " --samples-output {output.samples}"
        " --intervals-output {output.intervals}"
        " --figure figures/observed_{wildcards.task}_{wildcards.observation}_seed{wildcards.seed}"
        " --formats {params.formats} > {log} 2>&1"
