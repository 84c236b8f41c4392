"""The inventory model: the dataset container, the batched simulator, the policy
regularizations, heuristic policies and the optimal benchmarks."""
