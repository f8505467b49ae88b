# Copied verbatim (below this header) from the project's speed anchor (shared/anchors/torch_bert_bench.py) so that
# `bert-pruner bench` can run the PyTorch reference in the same invocation. Do not tune it: it is the yardstick.
"""Reference anchor: the same BERT shapes in PyTorch (Debian python3-torch, CPU).
Prints tokens/s for a training step (fwd+bwd+AdamW) and for inference.
Usage (Debian's python3 with python3-torch): python3 torch_bert_bench.py [layers hidden heads ffn batch seq threads]"""
import sys, time, math, torch, torch.nn as nn
L,H,A,I,B,T,TH = [int(x) for x in (sys.argv[1:8] if len(sys.argv)>7 else [4,256,4,1024,32,128,2])]
torch.set_num_threads(TH); torch.manual_seed(0)
V=863
class Layer(nn.Module):
    def __init__(s):
        super().__init__(); s.qkv=nn.Linear(H,3*H); s.o=nn.Linear(H,H); s.ln1=nn.LayerNorm(H)
        s.f1=nn.Linear(H,I); s.f2=nn.Linear(I,H); s.ln2=nn.LayerNorm(H)
    def forward(s,x,m):
        b,t,_=x.shape; q,k,v=s.qkv(x).view(b,t,3,A,H//A).permute(2,0,3,1,4)
        a=(q@k.transpose(-1,-2))/math.sqrt(H//A)+m; a=a.softmax(-1)
        h=(a@v).transpose(1,2).reshape(b,t,H); x=s.ln1(x+s.o(h))
        return s.ln2(x+s.f2(nn.functional.gelu(s.f1(x))))
class Bert(nn.Module):
    def __init__(s):
        super().__init__(); s.tok=nn.Embedding(V,H); s.pos=nn.Embedding(512,H); s.ln=nn.LayerNorm(H)
        s.layers=nn.ModuleList([Layer() for _ in range(L)]); s.pool=nn.Linear(H,H); s.cls=nn.Linear(H,17)
    def forward(s,ids):
        m=(ids==0).float()[:,None,None,:]*-1e9
        x=s.ln(s.tok(ids)+s.pos.weight[:ids.shape[1]])
        for l in s.layers: x=l(x,m)
        return s.cls(torch.tanh(s.pool(x[:,0])))
model=Bert(); opt=torch.optim.AdamW(model.parameters(),lr=1e-4)
ids=torch.randint(5,V,(B,T)); y=(torch.rand(B,17)>0.9).float(); lossf=nn.BCEWithLogitsLoss()
def step():
    opt.zero_grad(); l=lossf(model(ids),y); l.backward(); opt.step()
for _ in range(3): step()
n=10; t=time.time()
for _ in range(n): step()
tr=n*B*T/(time.time()-t)
model.eval()
with torch.no_grad():
    for _ in range(3): model(ids)
    t=time.time()
    for _ in range(n): model(ids)
    inf=n*B*T/(time.time()-t)
print(f"torch {torch.__version__} threads={TH} L={L} H={H} A={A} I={I} B={B} T={T} params={sum(p.numel() for p in model.parameters())}")
print(f"train_tokens_per_s={tr:.0f} infer_tokens_per_s={inf:.0f}")
