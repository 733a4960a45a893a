# One image for every Mailsite service; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MAILSITE_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --editable .
COPY . .
RUN mkdir -p /data
VOLUME /data
EXPOSE 25 465 587 110 995 143 993 4190 80 443
CMD ["python", "manage.py", "runmail"]
