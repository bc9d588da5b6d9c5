rule train:
    input:
        train=path("split", split="train"),
        val=path("split", split="val"),
    output:
        model=path("model"),
        history=path("history"),
    log:
        "logs/train/{task}/seed{seed}/{method}/{budget}.log",
    benchmark:
        "logs/benchmarks/train/{task}/seed{seed}/{method}/{budget}.tsv"
    conda:
        "../envs/train.yaml"
    threads: job_threads("train")
    resources:
        runtime=job_runtime("train"),
        mem_mb=job_mem_mb("train"),
        gpu=job_gpus("train"),
        # how the job runs, not what it computes (untracked: changing them re-runs nothing)
        checkpoint_seconds=train_execution("checkpoint_seconds"),
        memory_limit=train_execution("memory_limit_mb"),
    params:
        code=package_code("train"),
        task=task_source,
        options=train_options,
        method=lambda wildcards: method_base(wildcards.method),
        checkpoint=lambda wildcards, output: f"{output.model}.checkpoint",
    shell:
        "python -m bnre --threads {threads} train --task {params.task:q}"
        " --method {params.method} --budget {wildcards.budget}"
        " --train {input.train} --val {input.val} --options '{params.options}'"
        " --model {output.model} --history {output.history}"
        " --checkpoint {params.checkpoint}"
        " --checkpoint-seconds {resources.checkpoint_seconds}"
        " --memory-limit-mb {resources.memory_limit} > {log} 2>&1"
