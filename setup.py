import re
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE / "flask_evershop_customer" / "__init__.py").read_text(encoding="utf-8"),
    re.M,
).group(1)

setup(
    name="flask-evershop-customer",
    version=VERSION,
    description="EverShop's Customer REST API as a Flask extension: accounts, login, logout.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_namespace_packages(include=["flask_evershop_customer*"]),
    package_data={
        "flask_evershop_customer": [
            "py.typed",
            "openapi.json",
            "data/*.gz",
            "data/README.md",
            "data/LICENSE.django",
            "migrations/*.py",
            "migrations/versions/*.py",
        ]
    },
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=[
        "Flask>=3.1",
        "Flask-SQLAlchemy>=3.1",
        "Flask-Migrate>=4.0",
        "SQLAlchemy>=2.0",
        "Werkzeug>=3.1",
        "itsdangerous>=2.2",
        "PyJWT>=2.8",
        "email-validator>=2.1",
        "blinker>=1.7",
    ],
    extras_require={
        "postgres": ["psycopg[binary]>=3.1"],
        "mysql": ["PyMySQL>=1.1"],
        "test": [
            "pytest>=8.0",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "gunicorn>=22.0",
            "schemathesis>=4.32", "jsonschema>=4.18", "openapi-spec-validator>=0.7",
            "asgiref>=3.2",  # Flask's async views, for tests of async host views
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Framework :: Flask",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet :: WWW/HTTP :: Dynamic Content",
        "Typing :: Typed",
    ],
)
