"""The bundle's towers on a Triton Inference Server over gRPC (``[engine] backend = "triton"``).

The daemon keeps its bundle: prompts, labels, tokenizer and the speaker graph stay local; only the towers run on
the server. At start the engine checks that the server is live and that each model it uses serves the very file
of this bundle (the sha256 that ``emoscribe export --triton`` wrote into the model's config), so a node never
describes one bundle's embeddings with another bundle's prompts. Utterances are padded exactly as the local
engine pads them, so the two give the same outputs and the server's dynamic batcher can merge requests of
equal width from many daemons.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emoscribe.bundle import AFFECT_OUTPUT, STATS_OUTPUT, Bundle
from emoscribe.daemon.engine.onnx_local import pad_batch
from emoscribe.daemon.engine.protocol import EngineOutput
from emoscribe.export.triton import (
    BUNDLE_PARAMETER,
    FILE_PARAMETER,
    SHA256_PARAMETER,
    audio_file,
    model_name,
)

try:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException, np_to_triton_dtype
except ImportError as missing:  # the extra is optional; say how to get it
    raise RuntimeError(
        '[engine] backend = "triton" needs the Triton client (the triton extra): pip install "tritonclient[grpc]"'
    ) from missing

CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
"""A request the server has not answered by then fails its batch (counted as an engine error) instead of
stalling every stream behind it."""


class TritonError(RuntimeError):
    """The server cannot serve this bundle: unreachable, a model missing, or another bundle's model."""


class TritonEngine:
    """The audio tower (and text tower, for run-time queries) of ``bundle`` on the Triton server at ``url``."""

    def __init__(self, bundle: Bundle, url: str, variant: str = "auto") -> None:
        self.bundle = bundle
        self.url = url
        self.client = grpcclient.InferenceServerClient(url)
        try:
            live = self.client.is_server_live(client_timeout=CONNECT_TIMEOUT_S)
        except InferenceServerException as error:
            raise TritonError(f"Triton at {url} is unreachable ({error.message()}); check [engine] url") from None
        if not live:
            raise TritonError(f"Triton at {url} answers but is not live")
        self.audio_model = model_name(bundle, "audio")
        self.variant, self.max_batch, self.outputs = self._check(self.audio_model)
        if variant != "auto" and self.variant != audio_file(bundle, variant):
            raise TritonError(
                f"Triton at {url} serves {self.variant} as {self.audio_model}, not the {variant} variant asked for"
            )
        self.providers = [f"triton {url}"]
        self._text_checked = False
        self._tokenizer = None

    def _check(self, model: str) -> tuple[str, int, list[str]]:
        """The file the model serves, its batch limit and outputs, once its checksum is this bundle's."""
        try:
            ready = self.client.is_model_ready(model, client_timeout=CONNECT_TIMEOUT_S)
            response = self.client.get_model_config(model, client_timeout=CONNECT_TIMEOUT_S) if ready else None
        except InferenceServerException as error:
            raise TritonError(f"Triton at {self.url}: {model}: {error.message()}") from None
        if response is None:
            raise TritonError(
                f"Triton at {self.url} has no ready model {model}; write it into the server's model repository "
                f"with `emoscribe export --bundle {self.bundle.path} --triton REPOSITORY`"
            )
        config = response.config
        served = {key: config.parameters[key].string_value for key in config.parameters}
        file, digest = served.get(FILE_PARAMETER, ""), served.get(SHA256_PARAMETER, "")
        ours = self.bundle.manifest["files"].get(file, {}).get("sha256")
        if not digest or config.max_batch_size < 1:
            raise TritonError(
                f"Triton at {self.url}: {model} is not a batched model with a bundle checksum, as "
                "`emoscribe export --triton` writes them"
            )
        if digest != ours:
            raise TritonError(
                f"Triton at {self.url} serves another bundle: {model} is {file} sha256 {digest[:12]} of bundle "
                f"{served.get(BUNDLE_PARAMETER, '?')!r}, but {self.bundle.path} has "
                f"{'sha256 ' + ours[:12] if ours else f'no {file}'}"
            )
        return file, config.max_batch_size, [output.name for output in config.output]

    def warm_up(self, max_batch: int) -> None:
        """One short request, so a server that cannot run the model fails the start, not the first call."""
        try:
            self.infer([np.zeros(16_000, dtype=np.float32)])
        except InferenceServerException as error:
            raise TritonError(f"Triton at {self.url}: {self.audio_model} failed: {error.message()}") from None

    def infer(self, utterances: Sequence[np.ndarray]) -> EngineOutput:
        waveform, lengths = pad_batch(utterances)
        named: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for start in range(0, len(utterances), self.max_batch):
            rows = slice(start, start + self.max_batch)
            result = self._infer(self.audio_model, waveform=waveform[rows], lengths=lengths[rows, None])
            for name in self.outputs:
                named[name].append(result.as_numpy(name))
        joined = {name: np.concatenate(parts) for name, parts in named.items()}
        return EngineOutput(
            joined["embedding"], joined["logits"], joined.get(STATS_OUTPUT), joined.get(AFFECT_OUTPUT)
        )

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenised here as in training (``tokenizers``), embedded by the server's text tower."""
        if not self.bundle.has_text_tower:
            raise ValueError(f"{self.bundle.path}: the bundle has no text tower, so it cannot embed new queries")
        text_model = model_name(self.bundle, "text")
        if not self._text_checked:
            self._check(text_model)
            self._text_checked = True
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.bundle.file("tokenizer.json")))
            self._tokenizer.enable_padding()
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        return self._infer(text_model, input_ids=ids, attention_mask=mask).as_numpy("embedding")

    def _infer(self, model: str, **arrays: np.ndarray) -> grpcclient.InferResult:
        inputs = []
        for name, array in arrays.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(np.ascontiguousarray(array))
            inputs.append(tensor)
        return self.client.infer(model, inputs, client_timeout=REQUEST_TIMEOUT_S)
