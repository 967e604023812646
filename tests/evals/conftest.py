from tests.retrieval_fixtures import corpus, data_dir, minilm, settings

__all__ = ["corpus", "data_dir", "minilm", "settings"]
