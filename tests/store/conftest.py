from tests.retrieval_fixtures import chroma_server, corpus, data_dir, minilm, settings

__all__ = ["chroma_server", "corpus", "data_dir", "minilm", "settings"]
