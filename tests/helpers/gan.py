"""Overrides for short GAN runs through train.py's config on CPU."""

# A few batches per epoch, no FID, no grids: any GAN family's short CPU run.
SHORT_LOOP = [
    "metrics=none",
    "callbacks.model_checkpoint.monitor=null",
    "callbacks.sample_grid=null",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
    "test=false",
]
# The DCGAN-family short run: SHORT_LOOP with small batches and narrow networks.
SHORT = [
    *SHORT_LOOP,
    "data.batch_size=16",
    "model.generator.base_width=16",
    "model.discriminator.base_width=16",
]
