"""vLLM (CPU backend) as the serving family's engine: model build, engine driver, launcher.

The driver and the model builder run under vLLM's own interpreter (`.venv-vllm` on the
host, the image's python in the `vllm-cpu` env); `launch` starts them from the script's
process, so the efflab side never imports vLLM.
"""
