#!/usr/bin/env bash
# Creates .venv-peers with the peer stack that `python -m benchmarks peers` (photos) and `videopeers`
# (fer's `Video.analyze` on the same clips as ours) measure against:
# the `fer` package (https://github.com/justinshenk/fer), in a venv of its own so that nothing of it
# reaches the project's .venv. Idempotent: reruns only pip, which skips what is already installed.
#
# Why fer 22.4.0 and these pins:
#  - fer >= 22.5.0 (incl. 22.5.1 and 25.x) runs its MTCNN path on facenet-pytorch (torch), and declares
#    moviepy/ffmpeg; 22.4.0 is the last release whose `FER(mtcnn=True)` uses the TensorFlow `mtcnn`
#    package (`from mtcnn.mtcnn import MTCNN`). Its models (emotion_model.hdf5, the Haar cascade) ship
#    in the wheel, so nothing is downloaded at run time.
#  - fer 22.4.0 loads an old Keras-2 HDF5 model through `tensorflow.keras` and mtcnn 0.1.1 builds its
#    networks with Keras 2, so the stack is TensorFlow 2.15 (the last with Keras 2 as tf.keras, runs on
#    Python 3.11), which needs numpy < 2.
#  - fer and mtcnn are installed with --no-deps: fer declares opencv-contrib-python (GUI build: needs
#    libGL) and mtcnn declares opencv-python; the headless contrib build gives the same cv2 for this use.
#    matplotlib is only used by fer's charts (`Video.analyze` runs without it; its `cv2.waitKey` call
#    needs a GUI build, so benchmarks/videopeers.py makes it a no-op); pandas too, but fer 22.4.0
#    cannot be imported without it (a `pd.DataFrame` annotation is evaluated at import), so it is
#    installed.
#  - setuptools < 70 because fer imports pkg_resources to find its bundled model files.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-peers
PY=${PYTHON:-python3.11}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# (pip.conf may name local mirrors that do not exist here; keep their warnings out of the log)
exec 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"${PIP[@]}" \
    "tensorflow-cpu==2.15.1" \
    "numpy==1.26.4" \
    "opencv-contrib-python-headless==4.9.0.80" \
    "pillow==10.4.0" \
    "scikit-image==0.22.0" \
    "requests==2.32.3" \
    "tqdm==4.66.5" \
    "pandas==2.2.3" \
    "setuptools==69.5.1"
"${PIP[@]}" --no-deps "fer==22.4.0" "mtcnn==0.1.1"

"$VENV/bin/python" - <<'EOF'
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cv2, fer, mtcnn, numpy, tensorflow as tf
from fer import FER
from mtcnn.mtcnn import MTCNN  # what FER(mtcnn=True) imports
print(f"peer stack ok: fer {fer.__version__}, mtcnn {mtcnn.__version__}, tensorflow {tf.__version__}, "
      f"opencv {cv2.__version__}, numpy {numpy.__version__}")
EOF
