from tests.retrieval_fixtures import corpus, data_dir, minilm, settings, shared_chroma

__all__ = ["corpus", "data_dir", "minilm", "settings", "shared_chroma"]
