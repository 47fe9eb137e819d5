import enum


class AttentionType(enum.Enum):
    MHA = "MHA"
    MLA = "MLA"
    HYBRID = "HYBRID"
    LINEAR = "LINEAR"
