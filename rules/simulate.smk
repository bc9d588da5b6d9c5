rule simulate_block:
    output:
        temp("data/{task}/blocks/{split}/{block}.h5"),
    log:
        "logs/simulate/{task}/{split}/{block}.log",
    benchmark:
        "logs/benchmarks/simulate/{task}/{split}/{block}.tsv"
    conda:
        "../envs/simulate.yaml"
    threads: config["threads"]["simulate"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        seed=config["seed"],
        start=lambda wildcards: block_range(wildcards)[0],
        stop=lambda wildcards: block_range(wildcards)[1],
    shell:
        "python -m bnre --threads {threads} simulate --task {wildcards.task}"
        " --split {wildcards.split} --seed {params.seed}"
        " --start {params.start} --stop {params.stop} --output {output} > {log} 2>&1"


rule merge_blocks:
    input:
        block_files,
    output:
        "data/{task}/{split}.h5",
    log:
        "logs/merge/{task}/{split}.log",
    benchmark:
        "logs/benchmarks/merge/{task}/{split}.tsv"
    conda:
        "../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m bnre merge --output {output} {input} > {log} 2>&1"
