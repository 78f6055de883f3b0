"""gan_jax: a JAX functional research codebase for Generative Adversarial Networks."""

__version__ = "0.1.0"
