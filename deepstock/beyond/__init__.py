"""Beyond the paper: systems the source documents describe besides DeepStock."""
