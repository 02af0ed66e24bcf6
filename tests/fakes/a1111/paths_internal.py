"""Fake ``modules.paths_internal`` (A1111 1.10.1): the data folder and the folders derived from it.

The real module computes them from ``--data-dir`` (default: the webui folder) at import; here the
webui folder is a fixed place under the temp folder, and tests may point it elsewhere.
"""

import os
import tempfile

script_path = os.path.join(tempfile.gettempdir(), "fake-webui")
data_path = script_path
models_path = os.path.join(data_path, "models")
extensions_dir = os.path.join(data_path, "extensions")
default_output_dir = os.path.join(data_path, "outputs")
