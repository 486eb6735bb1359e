# The emotion assistant's web app, served by gunicorn. Build: deploy/build-image.sh (podman or docker),
# or docker build -t emotion-assistant .   Run: docker run --rm -p 8000:8000 emotion-assistant
# then open http://localhost:8000. Several of them behind nginx: deploy/compose.yaml.
# BASE: any image with Python 3.11 whose `pip` and `python` are on PATH (deploy/podman/make-base.sh
# builds a stand-in from Debian where python:3.11-slim cannot be pulled).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /srv/app

# Serving needs no TensorFlow or PyTorch (the detector and every model run on ONNX Runtime): the
# serving requirements make an environment of ~440 MB.
COPY requirements-serve.txt .
# Behind a TLS-inspecting proxy, pip needs the host's CA bundle: deploy/build-image.sh passes it as the
# build secret "ca" (used for this step only, never stored in the image); without it pip uses its own.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install -r requirements-serve.txt

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin appuser

# Serving imports app/ and model_core/ (cards, preprocessing, the predictor), never training/.
COPY app/ app/
COPY model_core/ model_core/
COPY models/ models/
COPY templates/ templates/
COPY static/ static/
COPY wsgi.py gunicorn.conf.py ./

USER appuser
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '8000'), timeout=4)"
# gunicorn gives a thread to each connection while it reads the request: facing the internet, put a
# buffering proxy in front (deploy/nginx/emotion.conf.template; docs/ROBUSTNESS.md "Deploying behind nginx").
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
