"""Start the LocalStack runtime in the foreground (``python -m
zerofn_localstack_plugin.launch``), keeping every file it writes inside the
run's own directory.

LocalStack's S3 store (which its Lambda uses to hold function code) writes to a
fixed /tmp/localstack-s3-storage; ZEROFN_S3_STORAGE_DIR moves it, so parallel
instances do not share it and nothing is left behind in /tmp. Everything else
follows TMPDIR, FILESYSTEM_ROOT and HOME (see ../start.sh).
"""

import os


def main():
    storage = os.environ.get("ZEROFN_S3_STORAGE_DIR")
    if storage:
        from localstack.services.s3 import provider

        provider.DEFAULT_S3_TMP_DIR = storage
    from localstack.runtime.main import main as run

    run()


if __name__ == "__main__":
    main()
