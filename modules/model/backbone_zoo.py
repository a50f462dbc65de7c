"""The study's 40 backbones and their metadata (BENCHMARK.md, "Backbones").

Each entry names a timm model (`architecture.tag`, fetched from the timm hub when
`pretrained=True`) or, for the five adversarially robust backbones that are not on
the hub, a timm architecture plus the format of the local checkpoint that holds
their weights. The metadata columns are those of `paper_results.csv`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BackboneInfo:
    name: str  # the app's name: the timm name, or robust_* for local checkpoints
    paper_name: str  # the `backbone` column of paper_results.csv
    architecture: str  # timm architecture
    pretrained_tag: str | None  # timm pretrained tag; None when weights come from a file
    checkpoint_format: str | None  # "madry" | "revisiting" for robust checkpoints
    short_name: str  # the `backbone_name` column
    size: str  # small | medium | large
    model_type: str  # fully convolutional | fully attention | hybrid
    pretraining_strategy: str
    pretraining_data: str
    pretraining_volume: int
    batch_size: int  # default per-GPU batch for classic AT at 224x224 (halved for TRADES)

    @property
    def timm_name(self) -> str:
        """The name timm's `create_model` takes (architecture only for robust ones)."""
        return f"{self.architecture}.{self.pretrained_tag}" if self.pretrained_tag else self.architecture

    def as_dict(self) -> dict:
        return asdict(self) | {"timm_name": self.timm_name}


_BATCH_SIZE = {"small": 128, "medium": 64, "large": 32}


def hub(timm_name: str) -> tuple[str, str, None]:
    architecture, tag = timm_name.split(".", 1)
    return architecture, tag, None


def robust(architecture: str, checkpoint_format: str) -> tuple[str, None, str]:
    return architecture, None, checkpoint_format


def _entry(name, paper_name, source, short_name, size, model_type, strategy, data, volume) -> BackboneInfo:
    architecture, tag, checkpoint_format = source
    return BackboneInfo(
        name,
        paper_name,
        architecture,
        tag,
        checkpoint_format,
        short_name,
        size,
        model_type,
        strategy,
        data,
        volume,
        _BATCH_SIZE[size],
    )


# One row per backbone, as in paper_results.csv: a table reads better unwrapped.
# fmt: off
BACKBONES: dict[str, BackboneInfo] = {info.name: info for info in [
    _entry("coat_tiny.in1k", "coat_tiny.in1k", hub("coat_tiny.in1k"), "coat_t,sup,in1k", "small", "hybrid", "supervised", "in1k", 1281167),
    _entry("deit_tiny_patch16_224.fb_in1k", "deit_tiny_patch16_224.fb_in1k", hub("deit_tiny_patch16_224.fb_in1k"), "deit_t,sup,in1k", "small", "fully attention", "supervised", "in1k", 1281167),
    _entry("edgenext_small.usi_in1k", "edgenext_small.usi_in1k", hub("edgenext_small.usi_in1k"), "edgenetx_s,sup,in1k", "small", "hybrid", "supervised", "in1k", 1281167),
    _entry("tf_efficientnet_b0.in1k", "efficientnet-b0", hub("tf_efficientnet_b0.in1k"), "efficientnet_b0,sup,in1k", "small", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("mobilenetv3_large_100.ra_in1k", "mobilenetv3_large_100.ra_in1k", hub("mobilenetv3_large_100.ra_in1k"), "mobilenet_v3,sup,in1k", "small", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("mobilevit_s.cvnets_in1k", "mobilevit-small", hub("mobilevit_s.cvnets_in1k"), "mobilevit_s,sup,in1k", "small", "hybrid", "supervised", "in1k", 1281167),
    _entry("regnetx_004.pycls_in1k", "regnetx_004.pycls_in1k", hub("regnetx_004.pycls_in1k"), "regnetx_004,sup,in1k", "small", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("coatnet_0_rw_224.sw_in1k", "coatnet_0_rw_224.sw_in1k", hub("coatnet_0_rw_224.sw_in1k"), "coatnet_0,sup,in1k", "medium", "hybrid", "supervised", "in1k", 1281167),
    _entry("convnext_tiny.fb_in1k", "convnext_tiny.fb_in1k", hub("convnext_tiny.fb_in1k"), "convnext_t,sup,in1k", "medium", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("convnext_tiny.fb_in22k", "convnext_tiny.fb_in22k", hub("convnext_tiny.fb_in22k"), "convnext_t,sup,in22k", "medium", "fully convolutional", "supervised", "in22k", 14197122),
    _entry("convnext_tiny.fb_in22k_ft_in1k", "convnext_tiny.fb_in22k_ft_in1k", hub("convnext_tiny.fb_in22k_ft_in1k"), "convnext_t,sup,in22k-in1k", "medium", "fully convolutional", "supervised (multistep)", "in22k+in1k", 15478289),
    _entry("deit_small_patch16_224.fb_in1k", "deit_small_patch16_224.fb_in1k", hub("deit_small_patch16_224.fb_in1k"), "deit_s,sup,in1k", "medium", "fully attention", "supervised", "in1k", 1281167),
    _entry("eva02_tiny_patch14_224.mim_in22k", "eva02_tiny_patch14_224.mim_in22k", hub("eva02_tiny_patch14_224.mim_in22k"), "eva02_b,mim,ink22k", "medium", "fully attention", "self-supervised", "in22k", 14197122),
    _entry("resnet50.a1_in1k", "resnet50.a1_in1k", hub("resnet50.a1_in1k"), "resnet50,sup,in1k", "medium", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("robust_convnext_tiny", "robust_convnext_tiny", robust("convnext_tiny", "revisiting"), "convnext_t,rob-sup,in1k", "medium", "fully convolutional", "supervised (robust)", "in1k", 1281167),
    _entry("robust_deit_small_patch16_224", "robust_deit_small_patch16_224", robust("deit_small_patch16_224", "revisiting"), "deit_s,rob-sup,in1k", "medium", "fully attention", "supervised (robust)", "in1k", 1281167),
    _entry("robust_resnet50", "robust_resnet50", robust("resnet50", "madry"), "resnet50,rob-sup,in1k", "medium", "fully convolutional", "supervised (robust)", "in1k", 1281167),
    _entry("swin_tiny_patch4_window7_224.ms_in1k", "swin_tiny_patch4_window7_224.ms_in1k", hub("swin_tiny_patch4_window7_224.ms_in1k"), "swin_t,sup,in1k", "medium", "fully attention", "supervised", "in1k", 1281167),
    _entry("vit_small_patch16_224.augreg_in1k", "vit_small_patch16_224.augreg_in1k", hub("vit_small_patch16_224.augreg_in1k"), "vit_s,sup,in1k", "medium", "fully attention", "supervised", "in1k", 1281167),
    _entry("vit_small_patch16_224.augreg_in21k", "vit_small_patch16_224.augreg_in21k", hub("vit_small_patch16_224.augreg_in21k"), "vit_s,sup,in22k", "medium", "fully attention", "supervised", "in22k", 14197122),
    _entry("vit_small_patch16_224.augreg_in21k_ft_in1k", "vit_small_patch16_224.augreg_in21k_ft_in1k", hub("vit_small_patch16_224.augreg_in21k_ft_in1k"), "vit_s,sup,ink22k-in1k", "medium", "fully attention", "supervised (multistep)", "in22k+in1k", 15478289),
    _entry("vit_small_patch16_224.dino", "vit_small_patch16_224.dino", hub("vit_small_patch16_224.dino"), "vit_b,dino,in1k", "medium", "fully attention", "self-supervised", "in1k", 1281167),
    _entry("convnext_base.clip_laion2b", "CLIP-convnext_base_w-laion2B-s13B-b82K", hub("convnext_base.clip_laion2b"), "convnext_b,clip,laion2b", "large", "fully convolutional", "self-supervised (multimodal)", "laion2B", 2320000000),
    _entry("convnext_base.clip_laiona", "CLIP-convnext_base_w-laion_aesthetic-s13B-b82K", hub("convnext_base.clip_laiona"), "convnext_b,clip,laiona", "large", "fully convolutional", "self-supervised (multimodal)", "laion_aesthetic", 900000000),
    _entry("coatnet_2_rw_224.sw_in12k", "coatnet_2_rw_224.sw_in12k", hub("coatnet_2_rw_224.sw_in12k"), "coatnet_2,sup,in12k", "large", "hybrid", "supervised", "in12k", 9000000),
    _entry("coatnet_2_rw_224.sw_in12k_ft_in1k", "coatnet_2_rw_224.sw_in12k_ft_in1k", hub("coatnet_2_rw_224.sw_in12k_ft_in1k"), "coatnet_2,sup,in12k-in1k", "large", "hybrid", "supervised (multistep)", "in12k+in1k", 10281167),
    _entry("convnext_base.clip_laion2b_augreg_ft_in12k_in1k", "convnext_base.clip_laion2b_augreg_ft_in12k_in1k", hub("convnext_base.clip_laion2b_augreg_ft_in12k_in1k"), "convnext_b,hybrid,laion2b-in12k-in1k", "large", "fully convolutional", "fusion", "laion2b+in12k+in1k", 2330281167),
    _entry("convnext_base.fb_in1k", "convnext_base.fb_in1k", hub("convnext_base.fb_in1k"), "convnext_b,sup,in1k", "large", "fully convolutional", "supervised", "in1k", 1281167),
    _entry("convnext_base.fb_in22k", "convnext_base.fb_in22k", hub("convnext_base.fb_in22k"), "convnext_b,sup,in22k", "large", "fully convolutional", "supervised", "in22k", 14197122),
    _entry("convnext_base.fb_in22k_ft_in1k", "convnext_base.fb_in22k_ft_in1k", hub("convnext_base.fb_in22k_ft_in1k"), "convnext_b,sup,in22k-in1k", "large", "fully convolutional", "supervised (multistep)", "in22k+in1k", 15478289),
    _entry("eva02_base_patch14_224.mim_in22k", "eva02_base_patch14_224.mim_in22k", hub("eva02_base_patch14_224.mim_in22k"), "eva02_b,mim,ink22k", "large", "fully attention", "self-supervised", "in22k", 14197122),
    _entry("robust_convnext_base", "robust_convnext_base", robust("convnext_base", "revisiting"), "convnext_b,rob-sup,in1k", "large", "fully convolutional", "supervised (robust)", "in1k", 1281167),
    _entry("robust_vit_base_patch16_224", "robust_vit_base_patch16_224", robust("vit_base_patch16_224", "revisiting"), "vit_b,rob-sup,in1k", "large", "fully attention", "supervised (robust)", "in1k", 1281167),
    _entry("swin_base_patch4_window7_224.ms_in22k_ft_in1k", "swin_base_patch4_window7_224.ms_in22k_ft_in1k", hub("swin_base_patch4_window7_224.ms_in22k_ft_in1k"), "swin_b,sup,ink22k-in1k", "large", "fully attention", "supervised (multistep)", "in22k+in1k", 15478289),
    _entry("vit_base_patch16_224.augreg_in1k", "vit_base_patch16_224.augreg_in1k", hub("vit_base_patch16_224.augreg_in1k"), "vit_b,sup,in1k", "large", "fully attention", "supervised", "in1k", 1281167),
    _entry("vit_base_patch16_224.augreg_in21k", "vit_base_patch16_224.augreg_in21k", hub("vit_base_patch16_224.augreg_in21k"), "vit_b,sup,in22k", "large", "fully attention", "supervised", "in22k", 14197122),
    _entry("vit_base_patch16_224.augreg_in21k_ft_in1k", "vit_base_patch16_224.augreg_in21k_ft_in1k", hub("vit_base_patch16_224.augreg_in21k_ft_in1k"), "vit_b,sup,ink22k-in1k", "large", "fully attention", "supervised (multistep)", "in22k+in1k", 15478289),
    _entry("vit_base_patch16_224.mae", "vit_base_patch16_224.mae", hub("vit_base_patch16_224.mae"), "vit_b,mae,in1k", "large", "fully attention", "self-supervised", "in1k", 1281167),
    _entry("vit_base_patch16_clip_224.laion2b", "vit_base_patch16_clip_224.laion2b", hub("vit_base_patch16_clip_224.laion2b"), "vit_b,clip,laion2b", "large", "fully attention", "self-supervised (multimodal)", "laion2B", 2320000000),
    _entry("vit_base_patch16_clip_224.laion2b_ft_in1k", "vit_base_patch16_clip_224.laion2b_ft_in1k", hub("vit_base_patch16_clip_224.laion2b_ft_in1k"), "vit_b,clip,laion2b", "large", "fully attention", "fusion", "laion2b+in1k", 2321281167),
]}
# fmt: on

_BY_PAPER_NAME = {info.paper_name: info for info in BACKBONES.values()}


def backbone_info(name: str) -> BackboneInfo | None:
    """The study backbone called `name` (app or paper name), or None for any other timm model."""
    return BACKBONES.get(name) or _BY_PAPER_NAME.get(name)


def to_paper_name(name: str) -> str:
    info = backbone_info(name)
    return info.paper_name if info else name


def default_batch_size(backbone: str, loss: str | None = None) -> int | None:
    """The per-device batch the experiment configs use for `backbone`: its size class's default times
    the loss's `batch_factor` (TRADES: half, two forward passes per example); None for a backbone
    outside the study."""
    from modules.model.losses import LOSSES  # torch: only when a batch size is asked for

    info = backbone_info(backbone)
    if info is None:
        return None
    factor = LOSSES.get(loss).batch_factor if loss else 1.0
    return max(1, int(info.batch_size * factor))
