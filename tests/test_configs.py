"Every shipped config reads through its task's typed sections: a key no dataclass knows would be an error."
from pathlib import Path
import pytest
import yaml
from vgsg.core.config import config_section
from vgsg.data import DataConfig, data_section
from vgsg.train.trainer import TrainConfig, train_config
from vgsg.train.vggishish import VGGishishData
from vgsg.train.transformer import TransformerData, FrozenCodebook
from vgsg.train.vocoder import VocoderData
from vgsg.train.melception import MelceptionData, MelceptionOptim

CONFIGS = sorted((Path(__file__).resolve().parent.parent/'configs').glob('*.yaml'))
DATA = dict(codebook=DataConfig, vggishish=VGGishishData, transformer=TransformerData, vocoder=VocoderData, melception=MelceptionData)
OTHER = dict(transformer={'codebook': FrozenCodebook}, melception={'optim': MelceptionOptim})


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_sections_are_known(path):
    cfg = yaml.safe_load(path.read_text())
    task = path.stem.split('_')[0]
    assert isinstance(train_config(cfg), TrainConfig)
    data = data_section(cfg, DATA[task])
    assert set(cfg.get('data') or {}) <= set(data)                   # nothing dropped
    for name, cls in OTHER.get(task, {}).items(): config_section(cls, cfg, name)
    assert set(cfg) <= {'train', 'model', 'data', 'loss', 'optim', 'codebook'}


def test_a_misspelt_key_names_itself():
    with pytest.raises(ValueError, match="unknown data setting 'stat_file' \\(did you mean 'stats_file'\\?\\)"):
        data_section(dict(data=dict(stat_file='x.txt')), MelceptionData)
    with pytest.raises(ValueError, match="unknown optim settings: \\['learning_rate'\\]"):
        config_section(MelceptionOptim, dict(optim=dict(learning_rate=1e-3)), 'optim')
