# dunflow: one image for the API, the workers and `dunflow db upgrade`.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.lock /src/
RUN /venv/bin/pip install -r /src/requirements.lock
COPY pyproject.toml README.md worker.py /src/
COPY dunflow /src/dunflow
COPY workflows /src/workflows
COPY activities /src/activities
COPY api /src/api
COPY designer /src/designer
RUN /venv/bin/pip install --no-deps /src

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/dunflow dunflow \
    && mkdir /data && chown dunflow /data
COPY --from=build /venv /venv
COPY flows /app/flows
COPY templates /app/templates
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DUNFLOW_DATA_DIR=/data \
    DUNFLOW_FLOWS_DIR=/app/flows \
    DUNFLOW_TEMPLATES_DIR=/app/templates \
    DUNFLOW_API_HOST=0.0.0.0
WORKDIR /data
USER dunflow
EXPOSE 8000
CMD ["dunflow", "api"]
