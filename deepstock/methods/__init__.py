"""The training methods: the differentiable simulator (DS), DDPG and PPO on Stable-Baselines3,
their environments, and one training interface."""
