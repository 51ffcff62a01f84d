"""channels_last vs contiguous on this device: resnet18 at 32 px, a training step (batch 32 and 128) and the
evaluation forward (batch 256). Evidence for Recipe.channels_last on the CPU. Prints JSON; run from the repo root:

    .venv/bin/python bench/channels_last_cpu.py > results/channels_last_cpu.json
"""

import json
import time

import torch
import torchvision

from fgvc_ref.bench import environment


def rates(memory_format, batch: int, steps: int = 10) -> dict:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,))
    for i in range(steps + 3):  # 3 untimed warm-up steps
        if i == 3:
            t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train = steps * batch / (time.perf_counter() - t)
    model.eval()
    xe = torch.randn(256, 3, 32, 32).contiguous(memory_format=memory_format)
    with torch.no_grad():
        model(xe)
        t = time.perf_counter()
        for _ in range(5):
            model(xe)
    return {"train_img_per_s": train, "eval_img_per_s": 5 * 256 / (time.perf_counter() - t)}


if __name__ == "__main__":
    rows = [{"memory_format": name, "batch": batch, **rates(fmt, batch)}
            for batch in (32, 128) for name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last))]
    print(json.dumps({"command": "python bench/channels_last_cpu.py", "environment": environment(), "rows": rows}, indent=2))
