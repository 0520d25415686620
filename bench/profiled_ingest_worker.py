"""The ingest service's worker class under cProfile, for bench/ingest_cpu.py --profile: each
worker process writes its profile to $INGEST_PROFILE_DIR/ingest-<pid>.prof when it stops."""

import cProfile
import os
import signal
import sys

from utility.ingest_worker import IngestWorker


class ProfiledIngestWorker(IngestWorker):
    def run(self) -> None:
        # uvicorn raises the stop signal again once it has shut down: exit, so `finally` runs.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        profile = cProfile.Profile()
        profile.enable()
        try:
            super().run()
        finally:
            profile.disable()
            name = f"ingest-{os.getpid()}.prof"
            profile.dump_stats(os.path.join(os.environ["INGEST_PROFILE_DIR"], name))
