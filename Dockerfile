# One image for every Tuition process (api, worker, beat, indexer, migrations, deploy).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# postgresql-client-16 from PostgreSQL's own repository (Debian bookworm ships 15): `tuition
# backup` runs pg_dump, which must be at least the server's version (compose runs postgres:16).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm curl ca-certificates postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY indexer ./indexer
RUN pip install .
COPY . .

RUN useradd --create-home tuition && chown -R tuition /app
USER tuition
EXPOSE 8000
CMD ["tuition", "api", "--host", "0.0.0.0", "--port", "8000"]
