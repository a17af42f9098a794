rule simulate_demo:
    output:
        DEMO_OUTPUTS,
    params:
        **config["demo"],
        seed=config["seed"],
    log:
        "results/logs/simulate_demo.log",
    benchmark:
        "results/benchmarks/simulate_demo.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/simulate_demo.py"
