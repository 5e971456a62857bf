"""Students: models that learn from a teacher."""

from kdistill.students.transformer import LAYOUTS, default_layers, from_spec, layers_from_teacher, layout_for, num_layers

__all__ = ["LAYOUTS", "default_layers", "from_spec", "layers_from_teacher", "layout_for", "num_layers"]
