"""Phase timings of an unchanged ``python train.py`` process (``bench/job_timing.py``), for the benches that run our
scripts: active only when ``$VLPROMPT_BENCH_PHASES`` names a folder and ``PYTHONPATH`` holds this folder."""
import os

if os.environ.get("VLPROMPT_BENCH_PHASES"):
    import sys

    _bench = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, _bench)
    try:
        import job_timing
    finally:
        sys.path.remove(_bench)
    job_timing.install_phases(job_timing.Path(os.environ["VLPROMPT_BENCH_PHASES"]))
