# CAPO Lab: one image for the web app and the workers (docker-compose.yml runs both).
# CUDA PyTorch base; bitsandbytes (QLoRA, paged AdamW) comes from the package's dependencies.
FROM pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CAPO_LAB_HOME=/data \
    HF_HOME=/data/hf

RUN useradd --create-home --uid 10001 capo \
    && mkdir -p /data \
    && chown capo:capo /data

WORKDIR /opt/capo-lab
COPY pyproject.toml README.md ./
COPY capo ./capo
COPY capo_lab ./capo_lab
COPY storage ./storage
COPY app ./app
COPY worker ./worker
COPY configs ./configs
# Editable, so the presets in /opt/capo-lab/configs sit where the package looks for them.
RUN pip install -e ".[scale]"

USER capo
VOLUME ["/data"]
EXPOSE 7860
# The worker turns SIGINT into "checkpoint the current run, leave it resumable, exit".
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["capo-lab", "health"]
# serve runs the database migrations before it starts listening.
CMD ["capo-lab", "serve", "--host", "0.0.0.0", "--no-worker"]
