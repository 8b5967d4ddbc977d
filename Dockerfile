# oshmon gateway image. Build: docker build -t oshmon .
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296
# (the MALLOC_ settings keep numpy's large temporaries in the heap: ~35 % faster engine, docs/benchmarks.md)
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY rules ./rules
COPY alerts ./alerts
COPY storage ./storage
COPY reports ./reports
COPY simulators ./simulators
COPY board ./board
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/oshmon oshmon \
    && mkdir -p /var/lib/oshmon && chown oshmon /var/lib/oshmon
USER oshmon
WORKDIR /var/lib/oshmon
ENTRYPOINT ["oshmon"]
CMD ["run"]
