"""Training for edgeav: data cache builder, teacher, losses, training loop, evaluation, distillation."""
