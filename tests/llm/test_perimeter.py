"""No code but the LLM factory may build a model provider or call a model endpoint.

An AST scan of `src/bastion/**/*.py`, one rule per way around the guard:

* private provider modules (`bastion/llm/_*.py`) are imported by `bastion/llm/factory.py` only
  (absolute, relative, or by name through importlib);
* the classes they define are named nowhere else;
* model API paths (`/chat/completions`, `/v1/messages`, `/converse`, ...) and the Bedrock
  runtime's service name appear, outside docstrings, only in the provider modules, and in the
  fake model servers, which serve them;
* model vendor SDKs (`openai`, `anthropic`, ...) are imported by provider modules only.

It is a tripwire for honest mistakes (a URL built by concatenating fragments gets past it); the
egress perimeter is what stops a determined caller.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import bastion.llm
from bastion.llm import factory

SRC = Path(__file__).resolve().parents[2] / "src"
FACTORY = "bastion/llm/factory.py"
FAKE_SERVER = "bastion/testing/fake_llm.py"
FAKE_SERVERS = frozenset(
    {FAKE_SERVER, "bastion/testing/fake_anthropic.py", "bastion/testing/fake_bedrock.py"}
)
PRIVATE_PREFIX = "bastion.llm._"
MODEL_PATHS = (
    "/chat/completions",
    "/v1/completions",
    "/v1/messages",
    "/api/generate",
    "/api/chat",
    "/converse",
    "bedrock-runtime",
)
MODEL_SDKS = ("openai", "anthropic", "litellm", "ollama", "cohere", "mistralai", "llama_cpp")


def is_provider_module(path: str) -> bool:
    return path.startswith("bastion/llm/_") and path != "bastion/llm/__init__.py"


def source_tree() -> dict[str, str]:
    """Every module under src/bastion, by its path relative to src/."""
    return {
        path.relative_to(SRC).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((SRC / "bastion").rglob("*.py"))
    }


def provider_classes(tree: dict[str, str]) -> set[str]:
    return {
        node.name
        for path, source in tree.items()
        if is_provider_module(path)
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
    }


def imported_modules(path: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The dotted names an import statement in module `path` reaches, relative ones resolved."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    package = path.removesuffix(".py").split("/")[:-1]
    base = package[: len(package) - node.level + 1] if node.level else []
    module = ".".join([*base, *([node.module] if node.module else [])])
    yield module
    yield from (f"{module}.{alias.name}" for alias in node.names)


def docstrings(tree: ast.Module) -> set[int]:
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def violations(path: str, source: str, providers: set[str]) -> list[str]:
    """`path:line: why` for every way module `path` (relative to src/) goes around the
    factory."""
    may_build = path == FACTORY or is_provider_module(path)
    may_name_endpoints = is_provider_module(path) or path in FAKE_SERVERS
    tree = ast.parse(source)
    skip = docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        for about_endpoint, why in _reasons(path, node, providers, skip):
            if not (may_name_endpoints if about_endpoint else may_build):
                found.append(f"{path}:{getattr(node, 'lineno', '?')}: {why}")
    return found


def _reasons(
    path: str, node: ast.AST, providers: set[str], skip: set[int]
) -> Iterator[tuple[bool, str]]:
    """What `node` does that only some modules may: (whether it is about an endpoint, why)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        for module in imported_modules(path, node):
            if module.startswith(PRIVATE_PREFIX):
                yield False, f"imports the private provider module {module}"
            if module.split(".")[0] in MODEL_SDKS:
                yield False, f"imports the model SDK {module}"
    elif isinstance(node, ast.Name) and node.id in providers:
        yield False, f"uses the provider class {node.id}"
    elif isinstance(node, ast.Attribute) and node.attr in providers:
        yield False, f"uses the provider class {node.attr}"
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
        if PRIVATE_PREFIX in node.value:
            yield False, f"names the private provider module in {node.value!r}"
        for marker in MODEL_PATHS:
            if marker in node.value:
                yield True, f"calls a model endpoint ({marker!r} in {node.value!r})"


# --- the scan of the real tree --------------------------------------------------------------


def test_only_the_factory_reaches_providers_and_model_endpoints() -> None:
    tree = source_tree()
    providers = provider_classes(tree)
    assert FACTORY in tree
    assert {"AnthropicProvider", "BedrockProvider", "OpenAIProvider"} <= providers
    found = [v for path, source in tree.items() for v in violations(path, source, providers)]
    assert not found, "model access around bastion.llm.factory:\n" + "\n".join(found)


def test_the_public_api_has_no_provider() -> None:
    providers = provider_classes(source_tree())
    assert not providers & set(bastion.llm.__all__)
    assert not providers & set(factory.__all__)


# --- the checker catches what it should -----------------------------------------------------

PROVIDERS = {"OpenAIProvider"}


def check(path: str, source: str) -> list[str]:
    return violations(path, source, PROVIDERS)


def test_catches_an_import_of_a_private_provider() -> None:
    source = "import os\nfrom bastion.llm._openai import OpenAIProvider\n"
    assert check("bastion/agents/rogue.py", source) == [
        "bastion/agents/rogue.py:2: imports the private provider module bastion.llm._openai",
        "bastion/agents/rogue.py:2: imports the private provider module "
        "bastion.llm._openai.OpenAIProvider",
    ]


def test_catches_relative_and_dynamic_imports() -> None:
    assert check("bastion/llm/helper.py", "from . import _openai\n") == [
        "bastion/llm/helper.py:1: imports the private provider module bastion.llm._openai"
    ]
    assert check("bastion/llm/helper.py", "from ._openai import X\n")[0].startswith(
        "bastion/llm/helper.py:1: imports the private provider module bastion.llm._openai"
    )
    dynamic = "import importlib\nm = importlib.import_module('bastion.llm._openai')\n"
    assert check("bastion/x.py", dynamic) == [
        "bastion/x.py:2: names the private provider module in 'bastion.llm._openai'"
    ]


def test_catches_a_provider_class_reached_another_way() -> None:
    source = "from bastion.llm import factory\nclient = factory.OpenAIProvider(cfg)\n"
    assert check("bastion/x.py", source) == [
        "bastion/x.py:2: uses the provider class OpenAIProvider"
    ]


def test_catches_a_direct_call_to_a_model_endpoint() -> None:
    source = (
        "import httpx\n"
        "\n"
        "async def ask(base, body):\n"
        "    return await httpx.AsyncClient().post(f'{base}/v1/chat/completions', json=body)\n"
    )
    (found,) = check("bastion/agents/shortcut.py", source)
    assert found.startswith("bastion/agents/shortcut.py:4: calls a model endpoint")


def test_catches_a_model_sdk() -> None:
    assert check("bastion/x.py", "import openai\n") == [
        "bastion/x.py:1: imports the model SDK openai"
    ]
    assert check("bastion/x.py", "from anthropic.types import Message\n")[0] == (
        "bastion/x.py:1: imports the model SDK anthropic.types"
    )


def test_catches_bedrock_reached_around_the_factory() -> None:
    source = "import boto3\nclient = boto3.client('bedrock-runtime')\n"
    (found,) = check("bastion/agents/shortcut.py", source)
    assert found.startswith("bastion/agents/shortcut.py:2: calls a model endpoint")
    url = "f'{endpoint}/model/{model_id}/converse'\n"
    assert check("bastion/x.py", url)[0].startswith("bastion/x.py:1: calls a model endpoint")


def test_allows_the_factory_the_providers_and_the_fake_server() -> None:
    assert check(FACTORY, "from bastion.llm._openai import OpenAIProvider\nOpenAIProvider\n") == []
    assert check("bastion/llm/_openai.py", "PATH = '/v1/chat/completions'\n") == []
    assert check(FAKE_SERVER, "Route('/v1/chat/completions', chat)\n") == []
    assert check("bastion/testing/fake_bedrock.py", "Route('/model/{m}/converse', c)\n") == []
    assert check("bastion/llm/_bedrock.py", "SERVICE = 'bedrock-runtime'\n") == []
    assert check(FAKE_SERVER, "from bastion.llm._openai import OpenAIProvider\n") != []
    assert check("bastion/x.py", '"""Talks to /v1/chat/completions via the factory."""\n') == []
    assert check("bastion/x.py", "from bastion.llm import build_client\n") == []
