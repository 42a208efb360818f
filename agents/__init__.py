"""multiverse.agents: the language-model policy, learner, losses, rollouts and episodes."""
