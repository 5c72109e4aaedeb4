"""A Mage data exporter block that lands the upstream block's DataFrame in a data lake with inlet.

Copy it into your project's `data_exporters/` folder (or paste it into a new data exporter
block), `pip install inlet` in Mage's environment (add `inlet` to requirements.txt), and set
the pipeline variables, or edit the defaults below. Credentials come from the project's
io_config.yaml profile: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION (and
AWS_ENDPOINT for MinIO and other S3-compatibles), GOOGLE_SERVICE_ACC_KEY(_FILEPATH),
AZURE_STORAGE_ACCOUNT_NAME with AZURE_CLIENT_ID / AZURE_CLIENT_SECRET / AZURE_TENANT_ID.
"""
from os import path

import inlet
from mage_ai.settings.repo import get_repo_path
from pandas import DataFrame

if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def export_data_to_lake(df: DataFrame, **kwargs) -> None:
    """
    Writes `df` as a Delta table (merged on its key), or as Parquet files with format='parquet'.
    Pipeline variables (kwargs): destination, table, format, mode, key, partition_keys.
    """
    config_path = path.join(get_repo_path(), 'io_config.yaml')
    config_profile = kwargs.get('io_config_profile', 'default')

    result = inlet.write(
        df,
        destination=kwargs.get('destination', 's3://your-bucket/lake'),
        table=kwargs.get('table', 'orders'),
        format=kwargs.get('format', 'delta'),
        mode=kwargs.get('mode', 'merge'),
        key=kwargs.get('key', 'id'),
        partition_keys=kwargs.get('partition_keys'),
        io_config=config_path,
        profile=config_profile,
    )
    print(f'inlet wrote {result.rows} rows to {result.table} (Delta version {result.version})')
