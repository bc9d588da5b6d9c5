rule simulate_block:
    output:
        temp(path("block")),
    log:
        "logs/simulate/{task}/seed{seed}/{split}/{block}.log",
    benchmark:
        "logs/benchmarks/simulate/{task}/seed{seed}/{split}/{block}.tsv"
    conda:
        simulate_env
    threads: job_threads("simulate_block")
    resources:
        runtime=job_runtime("simulate_block"),
        mem_mb=job_mem_mb("simulate_block"),
        gpu=job_gpus("simulate_block"),
    params:
        code=package_code("simulate"),
        task=task_source,
        start=lambda wildcards: block_range(wildcards)[0],
        stop=lambda wildcards: block_range(wildcards)[1],
    shell:
        "python -m bnre --threads {threads} simulate --task {params.task:q}"
        " --split {wildcards.split} --seed {wildcards.seed}"
        " --start {params.start} --stop {params.stop} --output {output} > {log} 2>&1"


rule merge_blocks:
    input:
        block_files,
    output:
        path("split"),
    log:
        "logs/merge/{task}/seed{seed}/{split}.log",
    benchmark:
        "logs/benchmarks/merge/{task}/seed{seed}/{split}.tsv"
    conda:
        "../envs/simulate.yaml"
    threads: job_threads("merge_blocks")
    resources:
        runtime=job_runtime("merge_blocks"),
        mem_mb=job_mem_mb("merge_blocks"),
        gpu=job_gpus("merge_blocks"),
    params:
        # the blocks are temporary: what made them is recorded here, so that a change of
        # simulator code or split size re-runs the merge and, through it, the blocks (the
        # seed is in the path)
        code=package_code("simulate", "merge"),
        pairs=lambda wildcards: split_size(wildcards.split),
    shell:
        "python -m bnre merge --output {output} {input} > {log} 2>&1"
