"""Overrides for short GAN runs through train.py's config on CPU."""

# Short CPU runs without FID: a few batches per epoch.
SHORT = [
    "metrics=none",
    "callbacks.model_checkpoint.monitor=null",
    "callbacks.sample_grid=null",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
    "data.batch_size=16",
    "model.generator.base_width=16",
    "model.discriminator.base_width=16",
    "test=false",
]
