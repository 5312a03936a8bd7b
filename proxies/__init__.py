"""Proxy models: tokenizer, the small GPT, swarm training and evaluation on the target suite."""
