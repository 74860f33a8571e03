// The prediction pane on the cases a review found wrong, judged by torch 1.13
// (predict_review_inputs.py writes the models and torch's outputs): a pickled residual model's
// result carries a visible warning right above the numbers, a TorchScript file ending in Sigmoid
// gives its probabilities as they are and the rule is shown under the result, an MNIST MLP takes a
// picture, and the sample shape proposed for an any-size CNN is the one `ckpt predict` uses.
#include "computeloader.h"
#include "document.h"
#include "predictionview.h"
#include "pythoninputs.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace ckpt;

namespace {

bool runAndWait(PredictionView &view)
{
    QSignalSpy spy(&view, &PredictionView::finished);
    view.runButton()->click();
    if (spy.isEmpty() && !spy.wait(60000))
        return false;
    return spy.first().first().toBool();
}

// The largest difference between the result's outputs and torch's (infinity when the counts differ).
double worst(const PredictionResult &r, const QJsonArray &want)
{
    double w = 0;
    if (static_cast<int>(r.outputs.size()) != want.size())
        return INFINITY;
    for (int i = 0; i < want.size(); ++i) {
        const auto row = want[i].toArray();
        const auto &got = r.outputs[static_cast<std::size_t>(i)].logits;
        if (static_cast<int>(got.size()) != row.size())
            return INFINITY;
        for (int j = 0; j < row.size(); ++j)
            w = std::max(w, std::abs(got[static_cast<std::size_t>(j)] - row[j].toDouble()));
    }
    return w;
}

QString csvRows(const QJsonArray &rows)
{
    QStringList lines;
    for (const auto &row : rows) {
        QStringList values;
        for (const auto &v : row.toArray())
            values << QString::number(v.toDouble(), 'g', 17);
        lines << values.join(QLatin1Char(','));
    }
    return lines.join(QLatin1Char('\n'));
}

} // namespace

class TestPredictReview : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void residualWarningBesideTheResult();
    void noWarningForSequential();
    void scriptEndingInSigmoid();
    void mnistMlpTakesAPicture();
    void anySizeCnnProposesTheCliSize();

private:
    QTemporaryDir m_dir;
    QJsonObject m_expected;
    std::shared_ptr<const Document> read(const QString &name)
    {
        return std::make_shared<const Document>(readDocument(m_dir.filePath(name).toStdString()));
    }
    QJsonObject expected(const char *name) const { return m_expected.value(QLatin1String(name)).toObject(); }
};

void TestPredictReview::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString error;
    m_expected = test::writePythonInputs(QStringLiteral(CKPT_TESTS_SOURCE_DIR "/views/predict_review_inputs.py"),
                                         m_dir.path(), error);
    QVERIFY2(!m_expected.isEmpty(), qPrintable(error));
}

// A pickled ResNet-like model runs its children in order, missing the skip connections: torch's
// numbers differ, and the warning says so right above the result table, visibly.
void TestPredictReview::residualWarningBesideTheResult()
{
    PredictionView view;
    view.resize(1100, 700);
    view.setDocument(read(QStringLiteral("resnet_block.pth")));
    QVERIFY2(view.architecture().has_value(), qPrintable(view.architectureError()));
    view.shapeEdit()->setText(QStringLiteral("3, 16, 16"));
    Q_EMIT view.shapeEdit()->editingFinished();
    QFile npy(m_dir.filePath(QStringLiteral("resnet_block_x.npy")));
    QVERIFY(npy.open(QIODevice::ReadOnly));
    // The .npy's float32 values as a CSV row (format 1.0: a 10-byte preamble whose last two bytes
    // give the header's length, little-endian).
    const QByteArray bytes = npy.readAll();
    QVERIFY(bytes.size() > 10);
    const int header = 10 + (static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8));
    QCOMPARE(bytes.size(), header + 3 * 16 * 16 * 4);
    QStringList values;
    const auto *f = reinterpret_cast<const float *>(bytes.constData() + header);
    for (int i = 0; i < 3 * 16 * 16; ++i)
        values << QString::number(static_cast<double>(f[i]), 'g', 9);
    view.batchEdit()->setPlainText(values.join(QLatin1Char(',')));
    view.inputTabs()->setCurrentIndex(PredictionView::BatchTab);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY2(runAndWait(view), qPrintable(view.runError()));
    // Why it warns: torch's forward adds the blocks' inputs.
    QVERIFY(worst(view.result(), expected("resnet_block").value(QStringLiteral("output")).toArray()) > 1e-3);
    QLabel *warning = view.resultWarningLabel();
    QVERIFY(warning->isVisible());
    QVERIFY2(warning->text().contains(QLatin1String("likely wrong")) && warning->text().contains(QLatin1String("residual")),
             qPrintable(warning->text()));
    // Beside the numbers: directly above the results table, in the same column.
    QVERIFY(warning->mapTo(&view, QPoint(0, warning->height())).y() <= view.resultsTable()->mapTo(&view, QPoint(0, 0)).y());
    QVERIFY(view.resultText().startsWith(QLatin1String("warning: ")));
    if (const QByteArray shot = qgetenv("CKPT_SCREENSHOT_DIR"); !shot.isEmpty())
        view.grab().save(QString::fromLocal8Bit(shot) + QStringLiteral("/predict-residual-warning.png"));
}

void TestPredictReview::noWarningForSequential()
{
    PredictionView view;
    view.setDocument(read(QStringLiteral("plain_full.pth")));
    QVERIFY2(view.architecture().has_value(), qPrintable(view.architectureError()));
    view.batchEdit()->setPlainText(csvRows(expected("plain_full").value(QStringLiteral("rows")).toArray()));
    view.inputTabs()->setCurrentIndex(PredictionView::BatchTab);
    QVERIFY2(runAndWait(view), qPrintable(view.runError()));
    QVERIFY(worst(view.result(), expected("plain_full").value(QStringLiteral("output")).toArray()) <= 1e-5);
    QVERIFY(view.resultWarningLabel()->isHidden());
    QVERIFY(view.probabilityRuleLabel()->text().contains(QLatin1String("softmax")));
}

// As its pickled twin: the outputs are probabilities already; the rule under the result says so.
void TestPredictReview::scriptEndingInSigmoid()
{
    PredictionView view;
    view.setDocument(read(QStringLiteral("sigmoid_ts.pt")));
    QVERIFY2(view.architecture().has_value(), qPrintable(view.architectureError()));
    const QJsonObject e = expected("sigmoid_ts");
    view.batchEdit()->setPlainText(csvRows(e.value(QStringLiteral("rows")).toArray()));
    view.inputTabs()->setCurrentIndex(PredictionView::BatchTab);
    QVERIFY2(runAndWait(view), qPrintable(view.runError()));
    const auto &r = view.result();
    QCOMPARE(r.probabilitiesFrom, std::string("as is"));
    QVERIFY(worst(r, e.value(QStringLiteral("output")).toArray()) <= 1e-5);
    const auto want = e.value(QStringLiteral("output")).toArray()[0].toArray();
    for (int j = 0; j < want.size(); ++j)
        QVERIFY(std::abs(r.outputs[0].probabilities[static_cast<std::size_t>(j)] - want[j].toDouble()) <= 1e-5);
    QVERIFY2(view.probabilityRuleLabel()->text().contains(QLatin1String("as they are")),
             qPrintable(view.probabilityRuleLabel()->text()));
}

// Flatten + Linear(784) with one channel's normalisation: a 1×28×28 picture; the package's
// Linear(784) with image_size 28 too.
void TestPredictReview::mnistMlpTakesAPicture()
{
    for (const char *model : {"mnist_mlp_full", "mnist_mlp_pkg"}) {
        PredictionView view;
        view.setDocument(read(QLatin1String(model) + QStringLiteral(".pth")));
        QVERIFY2(view.architecture().has_value(), qPrintable(view.architectureError()));
        QVERIFY(view.inputTabs()->isTabEnabled(PredictionView::ImageTab));
        for (const char *pic : {"digit.png", "photo.png"}) {
            QString error;
            QVERIFY2(view.loadImage(m_dir.filePath(QLatin1String(pic)), &error), qPrintable(error));
            QVERIFY2(runAndWait(view), qPrintable(view.runError()));
            const auto want = expected((std::string(model) + "_" + pic).c_str()).value(QStringLiteral("output")).toArray();
            QVERIFY2(worst(view.result(), want) <= 1e-5, model);
        }
    }
}

// The pane proposes the package's crop size, which ckpt predict now takes rows at too (its CLI test).
void TestPredictReview::anySizeCnnProposesTheCliSize()
{
    PredictionView view;
    view.setDocument(read(QStringLiteral("cnn_crop_pkg.pth")));
    QVERIFY2(view.architecture().has_value(), qPrintable(view.architectureError()));
    QCOMPARE(view.shapeEdit()->text(), QStringLiteral("3, 24, 24"));
    const QJsonObject e = expected("cnn_crop_pkg_24");
    view.batchEdit()->setPlainText(csvRows(QJsonArray{e.value(QStringLiteral("row")).toArray()}));
    view.inputTabs()->setCurrentIndex(PredictionView::BatchTab);
    QVERIFY2(runAndWait(view), qPrintable(view.runError()));
    QVERIFY(worst(view.result(), e.value(QStringLiteral("output")).toArray()) <= 1e-5);
}

QTEST_MAIN(TestPredictReview)
#include "tst_predictreview.moc"
