"""Keep every notebook and its paired text source in step (see course_utils/sources.py).

    .venv/bin/python tools/notebook_sources.py --to-ipynb [NN ...]   # after editing notebooks/src/*.py
    .venv/bin/python tools/notebook_sources.py --to-py [NN ...]      # after editing a notebook in JupyterLab
    .venv/bin/python tools/notebook_sources.py --check
"""

import sys

from course_utils.sources import main

if __name__ == "__main__":
    sys.exit(main())
