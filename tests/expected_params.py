"""Hand-derived expected linear-layer parameter counts (TP=1) for real HF configs.

Count = weight elements of all linear/matmul layers in the decoder layers + lm_head
(hidden*vocab, counted even if tie_word_embeddings). No biases, norms, embeddings, rotary buffers.
MTP/nextn layers (DeepSeek num_nextn_predict_layers) are excluded (noted in comments).
kv_cache_bytes_per_token_bf16: MHA/GQA 2*layers*kv_heads*head_dim*2; MLA layers*(kv_lora_rank+qk_rope_head_dim)*2.

Every total was computed twice: (1) per-layer component counts x number of dense/MoE layers,
(2) an independent layer-by-layer loop with different algebraic grouping
(e.g. attention = 2*h*head_dim*(heads+kv_heads), MoE = h*E*(1+3*moe_inter)). Both agree for every entry.
Configs read from tests/data/hf_configs/<name>.json.
"""

EXPECTED = {}

# Qwen__Qwen2-7B (Qwen2ForCausalLM)
# config: hidden=3584 vocab=152064 layers=28 heads=28 kv_heads=4 head_dim=128 (= 3584//28, config head_dim absent/null)
# per layer, attention:
#   q_proj: 3584*28*128 = 12845056
#   k_proj: 3584*4*128 = 1835008
#   v_proj: 3584*4*128 = 1835008
#   o_proj: 28*128*3584 = 12845056
# per layer, MLP (intermediate=18944):
#   gate_up_proj: 2*3584*18944 = 135790592
#   down_proj: 18944*3584 = 67895296
#   attention per layer = 29360128
#   dense layer = 29360128 + 203685888 = 233046016
# dense layers: 28; MoE layers: 0
# lm_head: 3584*152064 = 544997376 (tie_word_embeddings=False; counted regardless)
# total = 28*233046016 + 0*0 + 544997376 = 7070285824
# kv_cache_bytes_per_token (bf16): 2*28*4*128*2 = 57344
# check: independent layer-by-layer recomputation = 7070285824 -> both agree
EXPECTED['Qwen__Qwen2-7B'] = {'arch': 'Qwen2ForCausalLM', 'per_layer': {'q_proj': 12845056, 'k_proj': 1835008, 'v_proj': 1835008, 'o_proj': 12845056, 'gate_up_proj': 135790592, 'down_proj': 67895296}, 'dense_layers': 28, 'moe_layers': 0, 'lm_head': 544997376, 'total_linear_params': 7070285824, 'kv_cache_bytes_per_token_bf16': 57344}

# Qwen__Qwen2.5-7B (Qwen2ForCausalLM)
# config: hidden=3584 vocab=152064 layers=28 heads=28 kv_heads=4 head_dim=128 (= 3584//28, config head_dim absent/null)
# per layer, attention:
#   q_proj: 3584*28*128 = 12845056
#   k_proj: 3584*4*128 = 1835008
#   v_proj: 3584*4*128 = 1835008
#   o_proj: 28*128*3584 = 12845056
# per layer, MLP (intermediate=18944):
#   gate_up_proj: 2*3584*18944 = 135790592
#   down_proj: 18944*3584 = 67895296
#   attention per layer = 29360128
#   dense layer = 29360128 + 203685888 = 233046016
# dense layers: 28; MoE layers: 0
# lm_head: 3584*152064 = 544997376 (tie_word_embeddings=False; counted regardless)
# total = 28*233046016 + 0*0 + 544997376 = 7070285824
# kv_cache_bytes_per_token (bf16): 2*28*4*128*2 = 57344
# check: independent layer-by-layer recomputation = 7070285824 -> both agree
EXPECTED['Qwen__Qwen2.5-7B'] = {'arch': 'Qwen2ForCausalLM', 'per_layer': {'q_proj': 12845056, 'k_proj': 1835008, 'v_proj': 1835008, 'o_proj': 12845056, 'gate_up_proj': 135790592, 'down_proj': 67895296}, 'dense_layers': 28, 'moe_layers': 0, 'lm_head': 544997376, 'total_linear_params': 7070285824, 'kv_cache_bytes_per_token_bf16': 57344}

# Qwen__Qwen3-8B (Qwen3ForCausalLM)
# config: hidden=4096 vocab=151936 layers=36 heads=32 kv_heads=8 head_dim=128
# per layer, attention:
#   q_proj: 4096*32*128 = 16777216
#   k_proj: 4096*8*128 = 4194304
#   v_proj: 4096*8*128 = 4194304
#   o_proj: 32*128*4096 = 16777216
# per layer, MLP (intermediate=12288):
#   gate_up_proj: 2*4096*12288 = 100663296
#   down_proj: 12288*4096 = 50331648
#   attention per layer = 41943040
#   dense layer = 41943040 + 150994944 = 192937984
# dense layers: 36; MoE layers: 0
# lm_head: 4096*151936 = 622329856 (tie_word_embeddings=False; counted regardless)
# total = 36*192937984 + 0*0 + 622329856 = 7568097280
# kv_cache_bytes_per_token (bf16): 2*36*8*128*2 = 147456
# check: independent layer-by-layer recomputation = 7568097280 -> both agree
EXPECTED['Qwen__Qwen3-8B'] = {'arch': 'Qwen3ForCausalLM', 'per_layer': {'q_proj': 16777216, 'k_proj': 4194304, 'v_proj': 4194304, 'o_proj': 16777216, 'gate_up_proj': 100663296, 'down_proj': 50331648}, 'dense_layers': 36, 'moe_layers': 0, 'lm_head': 622329856, 'total_linear_params': 7568097280, 'kv_cache_bytes_per_token_bf16': 147456}

# Qwen__Qwen3-32B (Qwen3ForCausalLM)
# config: hidden=5120 vocab=151936 layers=64 heads=64 kv_heads=8 head_dim=128
# per layer, attention:
#   q_proj: 5120*64*128 = 41943040
#   k_proj: 5120*8*128 = 5242880
#   v_proj: 5120*8*128 = 5242880
#   o_proj: 64*128*5120 = 41943040
# per layer, MLP (intermediate=25600):
#   gate_up_proj: 2*5120*25600 = 262144000
#   down_proj: 25600*5120 = 131072000
#   attention per layer = 94371840
#   dense layer = 94371840 + 393216000 = 487587840
# dense layers: 64; MoE layers: 0
# lm_head: 5120*151936 = 777912320 (tie_word_embeddings=False; counted regardless)
# total = 64*487587840 + 0*0 + 777912320 = 31983534080
# kv_cache_bytes_per_token (bf16): 2*64*8*128*2 = 262144
# check: independent layer-by-layer recomputation = 31983534080 -> both agree
EXPECTED['Qwen__Qwen3-32B'] = {'arch': 'Qwen3ForCausalLM', 'per_layer': {'q_proj': 41943040, 'k_proj': 5242880, 'v_proj': 5242880, 'o_proj': 41943040, 'gate_up_proj': 262144000, 'down_proj': 131072000}, 'dense_layers': 64, 'moe_layers': 0, 'lm_head': 777912320, 'total_linear_params': 31983534080, 'kv_cache_bytes_per_token_bf16': 262144}

# Qwen__Qwen3-30B-A3B (Qwen3MoeForCausalLM)
# config: hidden=2048 vocab=151936 layers=48 heads=32 kv_heads=4 head_dim=128
# per layer, attention:
#   q_proj: 2048*32*128 = 8388608
#   k_proj: 2048*4*128 = 1048576
#   v_proj: 2048*4*128 = 1048576
#   o_proj: 32*128*2048 = 8388608
# num_experts=128 moe_intermediate=768 decoder_sparse_step=1 mlp_only_layers=[]
# per layer, MoE:
#   moe_router_gate: 2048*128 = 262144
#   moe_experts: 128*(2*2048*768+768*2048) = 603979776
#   attention per layer = 18874368
#   MoE layer = 18874368 + 604241920 = 623116288
# dense layers: 0; MoE layers: 48
# lm_head: 2048*151936 = 311164928 (tie_word_embeddings=False; counted regardless)
# total = 0*0 + 48*623116288 + 311164928 = 30220746752
# kv_cache_bytes_per_token (bf16): 2*48*4*128*2 = 98304
# check: independent layer-by-layer recomputation = 30220746752 -> both agree
EXPECTED['Qwen__Qwen3-30B-A3B'] = {'arch': 'Qwen3MoeForCausalLM', 'per_layer': {'q_proj': 8388608, 'k_proj': 1048576, 'v_proj': 1048576, 'o_proj': 8388608, 'moe_router_gate': 262144, 'moe_experts': 603979776}, 'dense_layers': 0, 'moe_layers': 48, 'lm_head': 311164928, 'total_linear_params': 30220746752, 'kv_cache_bytes_per_token_bf16': 98304}

# Qwen__Qwen3-235B-A22B (Qwen3MoeForCausalLM)
# config: hidden=4096 vocab=151936 layers=94 heads=64 kv_heads=4 head_dim=128
# per layer, attention:
#   q_proj: 4096*64*128 = 33554432
#   k_proj: 4096*4*128 = 2097152
#   v_proj: 4096*4*128 = 2097152
#   o_proj: 64*128*4096 = 33554432
# num_experts=128 moe_intermediate=1536 decoder_sparse_step=1 mlp_only_layers=[]
# per layer, MoE:
#   moe_router_gate: 4096*128 = 524288
#   moe_experts: 128*(2*4096*1536+1536*4096) = 2415919104
#   attention per layer = 71303168
#   MoE layer = 71303168 + 2416443392 = 2487746560
# dense layers: 0; MoE layers: 94
# lm_head: 4096*151936 = 622329856 (tie_word_embeddings=False; counted regardless)
# total = 0*0 + 94*2487746560 + 622329856 = 234470506496
# kv_cache_bytes_per_token (bf16): 2*94*4*128*2 = 192512
# check: independent layer-by-layer recomputation = 234470506496 -> both agree
EXPECTED['Qwen__Qwen3-235B-A22B'] = {'arch': 'Qwen3MoeForCausalLM', 'per_layer': {'q_proj': 33554432, 'k_proj': 2097152, 'v_proj': 2097152, 'o_proj': 33554432, 'moe_router_gate': 524288, 'moe_experts': 2415919104}, 'dense_layers': 0, 'moe_layers': 94, 'lm_head': 622329856, 'total_linear_params': 234470506496, 'kv_cache_bytes_per_token_bf16': 192512}

# meta-llama__Llama-2-7b-chat-hf (LlamaForCausalLM)
# config: hidden=4096 vocab=32000 layers=32 heads=32 kv_heads=32 head_dim=128
# per layer, attention:
#   q_proj: 4096*32*128 = 16777216
#   k_proj: 4096*32*128 = 16777216
#   v_proj: 4096*32*128 = 16777216
#   o_proj: 32*128*4096 = 16777216
# per layer, MLP (intermediate=11008):
#   gate_up_proj: 2*4096*11008 = 90177536
#   down_proj: 11008*4096 = 45088768
#   attention per layer = 67108864
#   dense layer = 67108864 + 135266304 = 202375168
# dense layers: 32; MoE layers: 0
# lm_head: 4096*32000 = 131072000 (tie_word_embeddings=False; counted regardless)
# total = 32*202375168 + 0*0 + 131072000 = 6607077376
# kv_cache_bytes_per_token (bf16): 2*32*32*128*2 = 524288
# check: independent layer-by-layer recomputation = 6607077376 -> both agree
EXPECTED['meta-llama__Llama-2-7b-chat-hf'] = {'arch': 'LlamaForCausalLM', 'per_layer': {'q_proj': 16777216, 'k_proj': 16777216, 'v_proj': 16777216, 'o_proj': 16777216, 'gate_up_proj': 90177536, 'down_proj': 45088768}, 'dense_layers': 32, 'moe_layers': 0, 'lm_head': 131072000, 'total_linear_params': 6607077376, 'kv_cache_bytes_per_token_bf16': 524288}

# meta-llama__Meta-Llama-3-8B (LlamaForCausalLM)
# config: hidden=4096 vocab=128256 layers=32 heads=32 kv_heads=8 head_dim=128
# per layer, attention:
#   q_proj: 4096*32*128 = 16777216
#   k_proj: 4096*8*128 = 4194304
#   v_proj: 4096*8*128 = 4194304
#   o_proj: 32*128*4096 = 16777216
# per layer, MLP (intermediate=14336):
#   gate_up_proj: 2*4096*14336 = 117440512
#   down_proj: 14336*4096 = 58720256
#   attention per layer = 41943040
#   dense layer = 41943040 + 176160768 = 218103808
# dense layers: 32; MoE layers: 0
# lm_head: 4096*128256 = 525336576 (tie_word_embeddings=False; counted regardless)
# total = 32*218103808 + 0*0 + 525336576 = 7504658432
# kv_cache_bytes_per_token (bf16): 2*32*8*128*2 = 131072
# check: independent layer-by-layer recomputation = 7504658432 -> both agree
EXPECTED['meta-llama__Meta-Llama-3-8B'] = {'arch': 'LlamaForCausalLM', 'per_layer': {'q_proj': 16777216, 'k_proj': 4194304, 'v_proj': 4194304, 'o_proj': 16777216, 'gate_up_proj': 117440512, 'down_proj': 58720256}, 'dense_layers': 32, 'moe_layers': 0, 'lm_head': 525336576, 'total_linear_params': 7504658432, 'kv_cache_bytes_per_token_bf16': 131072}

# mistralai__Mistral-7B-v0.1 (MistralForCausalLM)
# config: hidden=4096 vocab=32000 layers=32 heads=32 kv_heads=8 head_dim=128
# per layer, attention:
#   q_proj: 4096*32*128 = 16777216
#   k_proj: 4096*8*128 = 4194304
#   v_proj: 4096*8*128 = 4194304
#   o_proj: 32*128*4096 = 16777216
# per layer, MLP (intermediate=14336):
#   gate_up_proj: 2*4096*14336 = 117440512
#   down_proj: 14336*4096 = 58720256
#   attention per layer = 41943040
#   dense layer = 41943040 + 176160768 = 218103808
# dense layers: 32; MoE layers: 0
# lm_head: 4096*32000 = 131072000 (tie_word_embeddings=False; counted regardless)
# total = 32*218103808 + 0*0 + 131072000 = 7110393856
# kv_cache_bytes_per_token (bf16): 2*32*8*128*2 = 131072
# check: independent layer-by-layer recomputation = 7110393856 -> both agree
EXPECTED['mistralai__Mistral-7B-v0.1'] = {'arch': 'MistralForCausalLM', 'per_layer': {'q_proj': 16777216, 'k_proj': 4194304, 'v_proj': 4194304, 'o_proj': 16777216, 'gate_up_proj': 117440512, 'down_proj': 58720256}, 'dense_layers': 32, 'moe_layers': 0, 'lm_head': 131072000, 'total_linear_params': 7110393856, 'kv_cache_bytes_per_token_bf16': 131072}

# mistralai__Mixtral-8x7B-v0.1 (MixtralForCausalLM)
# config: hidden=4096 vocab=32000 layers=32 heads=32 kv_heads=8 head_dim=128 (= 4096//32, config head_dim absent/null)
# per layer, attention:
#   q_proj: 4096*32*128 = 16777216
#   k_proj: 4096*8*128 = 4194304
#   v_proj: 4096*8*128 = 4194304
#   o_proj: 32*128*4096 = 16777216
# per layer, MoE (num_local_experts=8, expert size = intermediate_size=14336):
#   moe_router_gate: 4096*8 = 32768
#   moe_experts: 8*(2*4096*14336+14336*4096) = 1409286144
#   attention per layer = 41943040
#   MoE layer = 41943040 + 1409318912 = 1451261952
# dense layers: 0; MoE layers: 32
# lm_head: 4096*32000 = 131072000 (tie_word_embeddings=False; counted regardless)
# total = 0*0 + 32*1451261952 + 131072000 = 46571454464
# kv_cache_bytes_per_token (bf16): 2*32*8*128*2 = 131072
# check: independent layer-by-layer recomputation = 46571454464 -> both agree
EXPECTED['mistralai__Mixtral-8x7B-v0.1'] = {'arch': 'MixtralForCausalLM', 'per_layer': {'q_proj': 16777216, 'k_proj': 4194304, 'v_proj': 4194304, 'o_proj': 16777216, 'moe_router_gate': 32768, 'moe_experts': 1409286144}, 'dense_layers': 0, 'moe_layers': 32, 'lm_head': 131072000, 'total_linear_params': 46571454464, 'kv_cache_bytes_per_token_bf16': 131072}

# deepseek-ai__DeepSeek-V2-Lite (DeepseekV2ForCausalLM)
# config: hidden=2048 vocab=102400 layers=27 heads=16 q_lora_rank=None kv_lora_rank=512 qk_nope=128 qk_rope=64 v_head_dim=128
#   intermediate=10944 moe_intermediate=1408 n_routed=64 n_shared=2 first_k_dense_replace=1 moe_layer_freq=1
# per layer, attention (MLA):
#   q_proj: 2048*16*(128+64) = 6291456
#   kv_a_proj_with_mqa: 2048*(512+64) = 1179648
#   kv_b_proj: 512*16*(128+128) = 2097152
#   o_proj: 16*128*2048 = 4194304
# per layer, dense MLP (layers < first_k_dense_replace):
#   dense_mlp: 3*2048*10944 = 67239936
# per layer, MoE MLP:
#   moe_router_gate: 2048*64 = 131072
#   moe_routed_experts: 64*3*2048*1408 = 553648128
#   moe_shared_experts: 3*2048*(2*1408) = 17301504
#   attention per layer = 13762560
#   dense layer = 13762560 + 67239936 = 81002496
#   MoE layer = 13762560 + 131072 + 553648128 + 17301504 = 584843264
# dense layers: 1 (layer_id < 1); MoE layers: 26
# lm_head: 2048*102400 = 209715200 (tie_word_embeddings=False; counted regardless)
# total = 1*81002496 + 26*584843264 + 209715200 = 15496642560
# kv_cache_bytes_per_token (bf16): 27*(512+64)*2 = 31104
# check: independent layer-by-layer recomputation = 15496642560 -> both agree
EXPECTED['deepseek-ai__DeepSeek-V2-Lite'] = {'arch': 'DeepseekV2ForCausalLM', 'per_layer': {'q_proj': 6291456, 'kv_a_proj_with_mqa': 1179648, 'kv_b_proj': 2097152, 'o_proj': 4194304, 'dense_mlp': 67239936, 'moe_router_gate': 131072, 'moe_routed_experts': 553648128, 'moe_shared_experts': 17301504}, 'dense_layers': 1, 'moe_layers': 26, 'lm_head': 209715200, 'total_linear_params': 15496642560, 'kv_cache_bytes_per_token_bf16': 31104}

# deepseek-ai__DeepSeek-R1 (DeepseekV3ForCausalLM)
# config: hidden=7168 vocab=129280 layers=61 heads=128 q_lora_rank=1536 kv_lora_rank=512 qk_nope=128 qk_rope=64 v_head_dim=128
#   intermediate=18432 moe_intermediate=2048 n_routed=256 n_shared=1 first_k_dense_replace=3 moe_layer_freq=1
# per layer, attention (MLA):
#   q_a_proj: 7168*1536 = 11010048
#   q_b_proj: 1536*128*(128+64) = 37748736
#   kv_a_proj_with_mqa: 7168*(512+64) = 4128768
#   kv_b_proj: 512*128*(128+128) = 16777216
#   o_proj: 128*128*7168 = 117440512
# per layer, dense MLP (layers < first_k_dense_replace):
#   dense_mlp: 3*7168*18432 = 396361728
# per layer, MoE MLP:
#   moe_router_gate: 7168*256 = 1835008
#   moe_routed_experts: 256*3*7168*2048 = 11274289152
#   moe_shared_experts: 3*7168*(1*2048) = 44040192
#   attention per layer = 187105280
#   dense layer = 187105280 + 396361728 = 583467008
#   MoE layer = 187105280 + 1835008 + 11274289152 + 44040192 = 11507269632
# dense layers: 3 (layer_id < 3); MoE layers: 58
# lm_head: 7168*129280 = 926679040 (tie_word_embeddings=False; counted regardless)
# total = 3*583467008 + 58*11507269632 + 926679040 = 670098718720
# NOT counted: 1 MTP/nextn layer(s) (num_nextn_predict_layers=1); each is eh_proj 2*7168*7168 = 102760448 + one MoE decoder layer 11507269632 = 11610030080 linear params (total 11610030080; its shared_head reuses an lm_head-sized matmul 7168*129280 = 926679040).
# kv_cache_bytes_per_token (bf16): 61*(512+64)*2 = 70272
# check: independent layer-by-layer recomputation = 670098718720 -> both agree
EXPECTED['deepseek-ai__DeepSeek-R1'] = {'arch': 'DeepseekV3ForCausalLM', 'per_layer': {'q_a_proj': 11010048, 'q_b_proj': 37748736, 'kv_a_proj_with_mqa': 4128768, 'kv_b_proj': 16777216, 'o_proj': 117440512, 'dense_mlp': 396361728, 'moe_router_gate': 1835008, 'moe_routed_experts': 11274289152, 'moe_shared_experts': 44040192}, 'dense_layers': 3, 'moe_layers': 58, 'lm_head': 926679040, 'total_linear_params': 670098718720, 'kv_cache_bytes_per_token_bf16': 70272}
