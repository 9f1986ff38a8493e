"""dunflow kernel: settings, store, flow model, money and calendar, shared by every part."""
