"""The base config tree, with Dassl's key names so published YAML files merge unchanged.

Method keys (``TRAINER.COOP`` ...) are not here: each trainer adds its own section in
``add_config``. Dataset and method YAML files, flags and ``KEY VALUE`` pairs override these.
"""
from yacs.config import CfgNode as CN

_C = CN()
# Dassl's config version (no effect here: see NO_EFFECT_KEYS at the end of this file)
_C.VERSION = 1
# Where logs, checkpoints and results go
_C.OUTPUT_DIR = "./output"
# Folder of a previous run to resume from ("" = resume from OUTPUT_DIR if it holds a checkpoint)
_C.RESUME = ""
# Seed for Python, NumPy and torch; a negative value leaves the generators unseeded
_C.SEED = -1
# Use CUDA when it is available
_C.USE_CUDA = True
# Print the full config and arguments at start-up
_C.VERBOSE = True

_C.INPUT = CN()
# Input image size (height, width)
_C.INPUT.SIZE = (224, 224)
# Interpolation for resizing: bilinear, bicubic or nearest
_C.INPUT.INTERPOLATION = "bilinear"
# Training augmentations, in Dassl's names (random_resized_crop, random_flip, random_crop, normalize, ...)
_C.INPUT.TRANSFORMS = ()
# Skip all transforms (Dassl: the loader then yields PIL images); only False works here (UNSUPPORTED_KEYS)
_C.INPUT.NO_TRANSFORM = False
# Normalisation mean and std
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
# Padding for random_crop
_C.INPUT.CROP_PADDING = 4
# Scale range of random_resized_crop
_C.INPUT.RRCROP_SCALE = (0.08, 1.0)
# Colour jitter strengths (colorjitter)
_C.INPUT.COLORJITTER_B = 0.4
_C.INPUT.COLORJITTER_C = 0.4
_C.INPUT.COLORJITTER_S = 0.4
_C.INPUT.COLORJITTER_H = 0.1
# Gaussian noise (gaussian_noise)
_C.INPUT.GN_MEAN = 0.0
_C.INPUT.GN_STD = 0.15

_C.DATASET = CN()
# Folder that holds the dataset folders (dtd/, imagenet/, ...)
_C.DATASET.ROOT = ""
# Registered dataset name, e.g. DescribableTextures
_C.DATASET.NAME = ""
# Domains, for Dassl's domain adaptation/generalisation readers (no effect here: NO_EFFECT_KEYS)
_C.DATASET.SOURCE_DOMAINS = ()
_C.DATASET.TARGET_DOMAINS = ()
# Images per class in the training set (-1 = all images)
_C.DATASET.NUM_SHOTS = -1
# Classes to keep: all, base (first half of the labels) or new (second half)
_C.DATASET.SUBSAMPLE_CLASSES = "all"
# Dassl keys kept so that published configs merge (no effect here: NO_EFFECT_KEYS)
_C.DATASET.NUM_LABELED = -1
_C.DATASET.VAL_PERCENT = 0.1

_C.DATALOADER = CN()
# Worker processes per loader
_C.DATALOADER.NUM_WORKERS = 4
# Log and skip images that cannot be read (missing, corrupt, truncated) instead of stopping with an error
_C.DATALOADER.SKIP_BAD_IMAGES = False
# Draw each training image's augmentation from its own seed (epoch seed + position), so that results do not
# depend on NUM_WORKERS or the number of processes; always on with several processes (torchrun). False: the
# published behaviour (each DataLoader worker's random stream)
_C.DATALOADER.PER_IMAGE_SEEDS = False
# Decode the training images once, up front, and keep their pixels in memory for every epoch (augmentations are
# unchanged: the same crops for the same seed); off by default, as in the published code
_C.DATALOADER.CACHE_DECODED = False
# Memory budget of CACHE_DECODED in MiB: images past it are decoded every time
_C.DATALOADER.CACHE_DECODED_MB = 4096
# Dassl's extra augmented views and un-augmented copy (no effect here: NO_EFFECT_KEYS)
_C.DATALOADER.K_TRANSFORMS = 1
_C.DATALOADER.RETURN_IMG0 = False
_C.DATALOADER.TRAIN_X = CN()
# Sampler of the training loader: RandomSampler or SequentialSampler
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32
# Dassl's domain/class samplers (no effect here: NO_EFFECT_KEYS)
_C.DATALOADER.TRAIN_X.N_DOMAIN = 0
_C.DATALOADER.TRAIN_X.N_INS = 16
# Dassl's unlabelled-data loader (no effect here: NO_EFFECT_KEYS)
_C.DATALOADER.TRAIN_U = CN()
_C.DATALOADER.TRAIN_U.SAME_AS_X = True
_C.DATALOADER.TRAIN_U.SAMPLER = "RandomSampler"
_C.DATALOADER.TRAIN_U.BATCH_SIZE = 32
_C.DATALOADER.TRAIN_U.N_DOMAIN = 0
_C.DATALOADER.TRAIN_U.N_INS = 16
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"
_C.DATALOADER.TEST.BATCH_SIZE = 32
# Memory budget (MiB) for evaluation images kept decoded (uint8) between repeated evaluations of a split (best-val
# epochs) when the image features cannot be cached (prompted image towers: MaPLe, IVLP, VPT); 0: decode every time
_C.DATALOADER.TEST.CACHE_MB = 2048

_C.MODEL = CN()
# Weights of the learnable part to start training from: a checkpoint file (e.g. <run>/prompt_learner/
# model.pth.tar-50) or a run folder (each module's newest epoch); not a resume (optimizer, schedule and epochs
# start afresh). With --eval-only and no --model-dir, these weights are evaluated
_C.MODEL.INIT_WEIGHTS = ""
_C.MODEL.BACKBONE = CN()
# CLIP backbone: an OpenAI name (ViT-B/16, RN50, ...), a local checkpoint path, or open_clip "model:pretrained"
_C.MODEL.BACKBONE.NAME = ""
# Dassl's switch for random initialisation (no effect here: CLIP weights are always loaded)
_C.MODEL.BACKBONE.PRETRAINED = True
# Folder searched for OpenAI checkpoints by file name (ViT-B-16.pt, ...); "" = ~/.cache/clip as the published code
_C.MODEL.BACKBONE.CACHE_DIR = ""
# Reuse the evaluation image features of a frozen, prompt-free image tower (ZeroshotCLIP, CoOp, CoCoOp, KgCoOp,
# MetaProto, InstancePrompt, LinearProbeCLIP): computed once per tower weights, precision, test transform, batch size
# and image files, kept for the run and in FEATURE_CACHE_DIR for other runs; the logits are the same bit for bit
# (vlprompt/engine/feature_cache.py). train.py --no-feature-cache sets False
_C.MODEL.FEATURE_CACHE = True
# Folder of the feature cache files ("" = $VLPROMPT_FEATURE_CACHE_DIR, else $XDG_CACHE_HOME/vlprompt/features,
# else ~/.cache/vlprompt/features)
_C.MODEL.FEATURE_CACHE_DIR = ""
# torch.compile the frozen CLIP towers in place (each transformer block; a convolutional tower whole): faster steps
# after a compile of tens of seconds per run; checkpoints unchanged (vlprompt/engine/kernels.py). train.py --compile
# sets True
_C.MODEL.COMPILE = False
# Dassl's classifier head (no effect here: NO_EFFECT_KEYS)
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = ""
_C.MODEL.HEAD.HIDDEN_LAYERS = ()
_C.MODEL.HEAD.ACTIVATION = "relu"
_C.MODEL.HEAD.BN = True
_C.MODEL.HEAD.DROPOUT = 0.0

_C.OPTIM = CN()
# sgd, adam, adamw or rmsprop
_C.OPTIM.NAME = "adam"
_C.OPTIM.LR = 0.0003
_C.OPTIM.WEIGHT_DECAY = 5e-4
_C.OPTIM.MOMENTUM = 0.9
_C.OPTIM.SGD_DAMPNING = 0
_C.OPTIM.SGD_NESTEROV = False
_C.OPTIM.RMSPROP_ALPHA = 0.99
_C.OPTIM.ADAM_BETA1 = 0.9
_C.OPTIM.ADAM_BETA2 = 0.999
# Dassl's staged learning rates (no effect here: NO_EFFECT_KEYS)
_C.OPTIM.STAGED_LR = False
_C.OPTIM.NEW_LAYERS = ()
_C.OPTIM.BASE_LR_MULT = 0.1
# single_step, multi_step or cosine (stepped once per epoch, as Dassl)
_C.OPTIM.LR_SCHEDULER = "single_step"
_C.OPTIM.STEPSIZE = (-1,)
_C.OPTIM.GAMMA = 0.1
_C.OPTIM.MAX_EPOCH = 10
# Warm-up epochs (-1 = none), constant or linear
_C.OPTIM.WARMUP_EPOCH = -1
_C.OPTIM.WARMUP_TYPE = "linear"
_C.OPTIM.WARMUP_CONS_LR = 1e-5
_C.OPTIM.WARMUP_MIN_LR = 1e-5
_C.OPTIM.WARMUP_RECOUNT = True

_C.TRAIN = CN()
# Save a checkpoint every N epochs (0 = only the last epoch)
_C.TRAIN.CHECKPOINT_FREQ = 0
# Log a line every N batches
_C.TRAIN.PRINT_FREQ = 10
# Dassl's epoch length of labelled + unlabelled training (no effect here: NO_EFFECT_KEYS)
_C.TRAIN.COUNT_ITER = "train_x"
# Write TensorBoard scalars (loss, acc, lr, eval accuracy) to OUTPUT_DIR/tensorboard
_C.TRAIN.TENSORBOARD = True
# Stop the run when a learnable parameter exceeds this absolute value after an epoch (0 = no check)
_C.TRAIN.MAX_PARAM_ABS = 1.0e4

_C.TEST = CN()
# The only evaluator (no effect here: NO_EFFECT_KEYS)
_C.TEST.EVALUATOR = "Classification"
# Log Dassl's per-class lines and "* average: x%" (mean of the per-class accuracies; parse_test_res.py --keyword average)
_C.TEST.PER_CLASS_RESULT = False
# Save the confusion matrix of the final evaluation (rows: true class, normalised per row) as OUTPUT_DIR/cmat.pt
# (Dassl's file) and OUTPUT_DIR/cmat.csv (with class names)
_C.TEST.COMPUTE_CMAT = False
# Skip the final evaluation
_C.TEST.NO_TEST = False
# Split evaluated at the end: test or val
_C.TEST.SPLIT = "test"
# last_step or best_val
_C.TEST.FINAL_MODEL = "last_step"

_C.TRAINER = CN()
# Registered trainer name, e.g. CoOp
_C.TRAINER.NAME = ""


# Dassl keys that merge (so that published config files load) but change nothing here. Setting one to another
# value than the default above, in a YAML file or on the command line, is a ConfigError (config/setup.py):
# no key is silently ignored. Key (or key prefix ending in ".") -> why it has no effect.
NO_EFFECT_KEYS: dict[str, str] = {
    "VERSION": "Dassl's config version; nothing reads it",
    "DATASET.SOURCE_DOMAINS": "no dataset reader here has domains; cross-dataset and domain runs name each "
                              "dataset with DATASET.NAME",
    "DATASET.TARGET_DOMAINS": "no dataset reader here has domains; cross-dataset and domain runs name each "
                              "dataset with DATASET.NAME",
    "DATASET.NUM_LABELED": "it sizes Dassl's semi-supervised labelled set; the training set here is "
                           "DATASET.NUM_SHOTS images per class",
    "DATASET.VAL_PERCENT": "it carves Dassl's val split out of train; the split files here fix the val set",
    "DATALOADER.K_TRANSFORMS": "it gives Dassl's semi-supervised methods several augmented views per image; the "
                               "loader here yields one",
    "DATALOADER.RETURN_IMG0": "it adds Dassl's un-augmented image copy to each batch; no method here reads one",
    "DATALOADER.TRAIN_X.N_DOMAIN": "it configures Dassl's domain and class samplers; DATALOADER.TRAIN_X.SAMPLER "
                                   "here is RandomSampler or SequentialSampler",
    "DATALOADER.TRAIN_X.N_INS": "it configures Dassl's domain and class samplers; DATALOADER.TRAIN_X.SAMPLER "
                                "here is RandomSampler or SequentialSampler",
    "DATALOADER.TRAIN_U.": "it configures Dassl's unlabelled-data loader; methods here train on labelled images only",
    "MODEL.BACKBONE.PRETRAINED": "CLIP weights are always loaded (MODEL.BACKBONE.NAME); there is no random "
                                 "initialisation",
    "MODEL.HEAD.": "CLIP methods classify with text features; there is no classifier head",
    "OPTIM.STAGED_LR": "Dassl's staged rates fine-tune a backbone's layers; only the learnable prompts train here, "
                       "at OPTIM.LR",
    "OPTIM.NEW_LAYERS": "Dassl's staged rates fine-tune a backbone's layers; only the learnable prompts train here, "
                        "at OPTIM.LR",
    "OPTIM.BASE_LR_MULT": "Dassl's staged rates fine-tune a backbone's layers; only the learnable prompts train "
                          "here, at OPTIM.LR",
    "TRAIN.COUNT_ITER": "it sets the epoch length of Dassl's labelled + unlabelled trainers; an epoch here is one "
                        "pass over the training set",
    "TEST.EVALUATOR": "the only evaluator is Classification",
}
# Dassl keys whose other values cannot work here (same check and one-line error, "is not supported").
UNSUPPORTED_KEYS: dict[str, str] = {
    "INPUT.NO_TRANSFORM": "CLIP needs resized, normalised image tensors; untransformed PIL images cannot be batched",
}


def get_cfg_default() -> CN:
    """A fresh, mutable copy of the base tree (no method sections)."""
    return _C.clone()
