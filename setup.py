"""Foley render farm: video in, synchronized stereo foley track out."""
from setuptools import find_packages, setup

setup(
    name="foley-render-farm",
    version="0.1.0",
    description="Studio foley render farm around a Kling-Foley-style video-to-audio model",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["render_farm*", "schedulers*", "storage*", "foley_model*", "migrations*"]),
    include_package_data=True,
    package_data={
        "migrations": ["alembic.ini", "script.py.mako", "versions/*.py"],
        "foley_model": ["checkpoints/*/*.safetensors", "checkpoints/*/*.json"],
    },
    install_requires=[
        "torch==2.13.0",
        "numpy>=1.26,<3",
        "av==18.1.*",
        "click>=8.1,<9",
        "sqlalchemy>=2.0,<2.2",
        "alembic>=1.13,<2",
        "boto3>=1.36,<2",
        "celery[redis]>=5.5,<6",
        "redis>=5,<9",
        "psycopg[binary]>=3.1,<4",
        "safetensors>=0.4,<1",
        "pyloudnorm>=0.1.1,<1",
        "scipy>=1.11,<2",
        "platformdirs>=4,<5",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            "hypothesis>=6.100,<7",
            "moto[server]>=5.0,<6",
        ],
        "gpu": ["deepspeed>=0.16,<1"],
    },
    entry_points={"console_scripts": ["foley=render_farm.cli:main"]},
)
