"""frontier.cli.preamble: what the libraries may print."""

from __future__ import annotations

import os
import subprocess
import sys


def test_libraries_draw_no_tqdm_bars() -> None:
    """A bar a library draws with tqdm itself (transformers' GGUF conversion does) is off
    once the CLI has quieted the libraries: tqdm reads the setting when it is imported."""
    code = (
        "import sys\n"
        "from frontier.cli.preamble import quiet_libraries\n"
        "quiet_libraries(debug=False)\n"
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(3), desc='converting'):\n"
        "    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "converting" not in out.stderr
