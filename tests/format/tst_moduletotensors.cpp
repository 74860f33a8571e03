// moduleToTensors judged by PyTorch: for a pickled module tree torch.save wrote, the tensors it
// lists are the ones Module.to(dtype) converts, named as named_parameters() and named_buffers()
// name them: non-persistent buffers included, a tied weight and a module registered twice once.

#include "document.h"
#include "fullmodel.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>

using namespace ckpt;

namespace {

const char *kModel = R"PY(
import sys, json, torch, torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.block = nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.again = self.block[0]                 # one module under two names
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.emb.weight         # tied
        self.register_buffer('position_ids', torch.arange(16).unsqueeze(0))
        self.register_buffer('cache', torch.zeros(4), persistent=False)
        self.block[1].register_buffer('mask', torch.ones(8, dtype=torch.float64), persistent=False)
        self.plain = torch.ones(3)                 # not a parameter or buffer: Module.to leaves it
m = Net().eval()
torch.save(m, sys.argv[1])
names = [n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers()]
print(json.dumps(sorted(names)))
)PY";

} // namespace

class TestModuleToTensors : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void namesAsTorchNamesThem()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.path() + "/full.pth";
        QProcess python;
        python.start(QStringLiteral(CKPT_PYTHON), {"-c", kModel, path});
        QVERIFY(python.waitForFinished(120000));
        QCOMPARE(python.exitCode(), 0);
        const QByteArray expected = python.readAllStandardOutput().trimmed();

        const Document doc = readDocument(path.toStdString());
        QVERIFY(doc.root);
        const auto tensors = moduleToTensors(*doc.root);
        std::vector<std::string> names;
        for (const auto &t : tensors)
            names.push_back(t.name);
        std::sort(names.begin(), names.end());
        QByteArray got = "[";
        for (std::size_t i = 0; i < names.size(); ++i)
            got += (i ? ", \"" : "\"") + QByteArray::fromStdString(names[i]) + "\"";
        got += "]";
        QCOMPARE(got, expected);
        // The non-persistent buffers are there; state_dict() (the document's) leaves them out.
        QVERIFY(std::any_of(tensors.begin(), tensors.end(), [](const NamedTensor &t) { return t.name == "cache"; }));
        QVERIFY(std::none_of(doc.stateDict.begin(), doc.stateDict.end(),
                             [](const NamedTensor &t) { return t.name == "cache"; }));
    }

    void notAModule() { QVERIFY(moduleToTensors(*Value::dict()).empty()); }
};

QTEST_GUILESS_MAIN(TestModuleToTensors)
#include "tst_moduletotensors.moc"
