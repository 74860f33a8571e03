#include "predictionview.h"

#include "architecturewording.h"
#include "dialogfolders.h"
#include "jobpool.h"

#include "computeloader.h"
#include "document.h"
#include "predictionjson.h"
#include "predictionoutputs.h"
#include "predictioninput.h"
#include "valuetext.h"
#include "textcodec.h"

#include <QApplication>
#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QEvent>
#include <QLegend>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFrame>
#include <QFutureWatcher>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QScrollArea>
#include <QScrollBar>
#include <QShortcut>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QStylePainter>
#include <QTabWidget>
#include <QTableWidget>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent>

#include <numeric>
#include <random>

namespace ckpt {

namespace {

QString q(const std::string &s) { return QString::fromStdString(s); }

// The engine's messages name `ckpt predict`'s options; the pane says the same in its own words:
// its Source box chooses between the file, a TorchScript file of the model and a spec.
QString paneWording(const std::string &engineText)
{
    QString text = q(engineText);
    if (!text.contains(QLatin1String("--")))
        return text;
    static const std::pair<const char *, const char *> kWords[] = {
        {"a TorchScript architecture (--arch) or a spec (--arch-spec)",
         "a TorchScript file of the model or a spec (the Source box above)"},
        {"a TorchScript file of the model (--arch) or a spec (--arch-spec)",
         "a TorchScript file of the model or a spec (the Source box above)"},
        {"a TorchScript export of the model (--arch) or its layers as a spec (--arch-spec)",
         "a TorchScript export of the model or its layers as a spec (the Source box above)"},
        {"give --arch or --arch-spec", "choose a TorchScript file of the model or a spec as the Source"},
        {"give --arch-spec if it differs", "give a spec (Source) if it differs"},
        {"predicted directly or given with --arch", "opened itself or chosen as the Source"},
        {"(torch.jit.script(model).save(...), or --arch)", "(torch.jit.script(model).save(...), opened itself or "
                                                            "chosen as the Source)"},
        {"give the model's own TorchScript file with --arch, or its layers with --arch-spec",
         "choose the model's own TorchScript file or a spec as the Source"},
        {"give it as the sample shape C,H,W with --input-shape", "give it in the Sample shape field (C, H, W)"},
        {"--probabilities none", "Probabilities: none"},
        {"--activation", "the Activation box"},
        {"--arch-spec", "a spec"},
        {" (--arch)", ""},
    };
    for (const auto &[cli, pane] : kWords)
        text.replace(QLatin1String(cli), QLatin1String(pane));
    return text;
}

// A combo box whose current text, when longer than the box, ends in "…" rather than being cut
// off mid-letter ("CPU — Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz, 123 GiB"); its popup is
// as wide as its longest entry.
class ElidingComboBox : public QComboBox {
public:
    using QComboBox::QComboBox;
    void showPopup() override
    {
        int widest = 0;
        for (int i = 0; i < count(); ++i)
            widest = std::max(widest, fontMetrics().horizontalAdvance(itemText(i)));
        view()->setMinimumWidth(widest + 4 * style()->pixelMetric(QStyle::PM_DefaultFrameWidth, nullptr, this) +
                                style()->pixelMetric(QStyle::PM_ScrollBarExtent, nullptr, this) + 16);
        QComboBox::showPopup();
    }

protected:
    void paintEvent(QPaintEvent *) override
    {
        QStylePainter painter(this);
        painter.setPen(palette().color(QPalette::Text));
        QStyleOptionComboBox option;
        initStyleOption(&option);
        painter.drawComplexControl(QStyle::CC_ComboBox, option);
        const QRect field = style()->subControlRect(QStyle::CC_ComboBox, &option, QStyle::SC_ComboBoxEditField, this);
        option.currentText = fontMetrics().elidedText(option.currentText, Qt::ElideRight, field.width() - 2);
        painter.drawControl(QStyle::CE_ComboBoxLabel, option);
    }
};

// How many rows the Embedding a model takes indices into has (indices run from 0 to that less one);
// nullopt when the model takes values, or the table's size is not known.
std::optional<std::int64_t> indexCount(const Architecture &arch)
{
    if (!arch.integerInput)
        return std::nullopt;
    for (const Layer *l : leavesInOrder(arch.root)) {
        if (l->type != "Embedding")
            continue;
        const auto it = l->options.find("num_embeddings");
        if (it != l->options.end() && it->is_number_integer() && it->get<std::int64_t>() > 0)
            return it->get<std::int64_t>();
        return std::nullopt;
    }
    return std::nullopt;
}

QString shapeString(const std::vector<std::int64_t> &s)
{
    QStringList parts;
    for (auto d : s)
        parts << (d < 0 ? QStringLiteral("?") : QString::number(d));
    return parts.join(QStringLiteral(", "));
}

struct RunOutcome {
    std::shared_ptr<Predictor> predictor;
    std::optional<PredictionResult> result;
    std::vector<std::string> notes;
    QString error;
};

} // namespace

PredictionView::PredictionView(QWidget *parent) : QWidget(parent)
{
    auto *splitter = new QSplitter(Qt::Horizontal, this);
    auto *outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->addWidget(splitter);

    // Left: architecture, preprocessing, input, device, run.
    auto *controls = new QWidget;
    auto *left = new QVBoxLayout(controls);

    auto *archBox = new QGroupBox(tr("Architecture"));
    auto *archForm = new QFormLayout(archBox);
    m_archForm = archForm;
    m_archSource = new QComboBox;
    m_archSource->addItems({tr("From the file"), tr("TorchScript file of the model"), tr("Spec (JSON list of layers)")});
    m_archSource->setToolTip(tr("From the file: the model the file holds, or one inferred from its weights.\n"
                                "TorchScript file of the model: a scripted or traced copy that runs these weights.\n"
                                "Spec: the layers as JSON, starting from those inferred from the file, to edit."));
    archForm->addRow(tr("Source"), m_archSource);
    m_activation = new QComboBox;
    m_activation->addItems({QStringLiteral("relu"), QStringLiteral("tanh"), QStringLiteral("sigmoid"), QStringLiteral("gelu"),
                            QStringLiteral("silu"), QStringLiteral("elu"), QStringLiteral("leaky_relu"), QStringLiteral("none")});
    m_activation->setToolTip(tr("Activation between the Linear layers of an MLP inferred from the weights"));
    archForm->addRow(tr("Activation"), m_activation);
    auto *pathRow = new QHBoxLayout;
    m_pathRow = pathRow;
    m_scriptPath = new QLineEdit;
    m_scriptPath->setPlaceholderText(tr("model_scripted.pt"));
    auto *browse = new QPushButton(tr("Browse…"));
    m_browse = browse;
    pathRow->addWidget(m_scriptPath);
    pathRow->addWidget(browse);
    archForm->addRow(tr("TorchScript"), pathRow);
    m_spec = new QPlainTextEdit;
    m_spec->setPlaceholderText(QStringLiteral("[{\"type\": \"Linear\", \"name\": \"fc1\"}, {\"type\": \"ReLU\"}, ...]"));
    m_spec->setMaximumHeight(110);
    archForm->addRow(tr("Spec"), m_spec);
    auto *apply = new QPushButton(tr("Apply"));
    m_apply = apply;
    archForm->addRow(QString(), apply);
    m_archLabel = new QLabel;
    m_archLabel->setWordWrap(true);
    m_archLabel->setTextFormat(Qt::RichText);
    archForm->addRow(m_archLabel);
    left->addWidget(archBox);

    auto *preBox = new QGroupBox(tr("Preprocessing"));
    auto *preLayout = new QVBoxLayout(preBox);
    m_normalize = new QCheckBox(tr("Normalise the input: (x − mean) / std"));
    m_preLabel = new QLabel;
    m_preLabel->setWordWrap(true);
    m_preLabel->setTextFormat(Qt::PlainText);
    preLayout->addWidget(m_normalize);
    preLayout->addWidget(m_preLabel);
    left->addWidget(preBox);

    auto *inBox = new QGroupBox(tr("Input"));
    auto *inLayout = new QVBoxLayout(inBox);
    auto *shapeRow = new QHBoxLayout;
    shapeRow->addWidget(new QLabel(tr("Sample shape")));
    m_shape = new QLineEdit;
    m_shape->setToolTip(tr("One sample's shape, inferred from the first layer; edit it for another size"));
    shapeRow->addWidget(m_shape);
    inLayout->addLayout(shapeRow);
    m_inputNote = new QLabel;
    m_inputNote->setObjectName(QStringLiteral("inputNote"));
    m_inputNote->setWordWrap(true);
    m_inputNote->setTextFormat(Qt::PlainText);
    m_inputNote->hide();
    inLayout->addWidget(m_inputNote);
    m_inputTabs = new QTabWidget;
    m_form = new QTableWidget(0, 2);
    m_form->setHorizontalHeaderLabels({tr("Feature"), tr("Value")});
    m_form->horizontalHeader()->setStretchLastSection(true);
    m_form->verticalHeader()->setVisible(false);
    // A few rows in view whatever the pane's height: the form is what one fills in.
    m_form->setMinimumHeight(m_form->horizontalHeader()->sizeHint().height() + 4 * m_form->verticalHeader()->defaultSectionSize() + 4);
    m_inputTabs->addTab(m_form, tr("Form"));
    auto *batchPage = new QWidget;
    auto *batchLayout = new QVBoxLayout(batchPage);
    m_batch = new QPlainTextEdit;
    m_batch->setPlaceholderText(tr("One sample per line, values separated by commas; a header row of names is skipped"));
    batchLayout->addWidget(m_batch);
    auto *batchFile = new QPushButton(tr("Open .csv or .npy…"));
    batchLayout->addWidget(batchFile);
    m_inputTabs->addTab(batchPage, tr("Batch (CSV)"));
    auto *imagePage = new QWidget;
    auto *imageLayout = new QVBoxLayout(imagePage);
    auto *openImage = new QPushButton(tr("Open image…"));
    m_imagePreview = new QLabel(tr("No image: read as ckpt predict reads it, as PIL does (JPEG by libjpeg, resized with the PIL filter the package's interpolation names, bilinear when it names none, or at its own size where the model takes any), scaled to [0, 1], normalised per channel"));
    m_imagePreview->setWordWrap(true);
    m_imagePreview->setAlignment(Qt::AlignCenter);
    imageLayout->addWidget(openImage);
    imageLayout->addWidget(m_imagePreview, 1);
    m_inputTabs->addTab(imagePage, tr("Image"));
    inLayout->addWidget(m_inputTabs, 1);
    auto *fills = new QHBoxLayout;
    auto *zeros = new QPushButton(tr("Zeros"));
    auto *random = new QPushButton(tr("Random"));
    m_batchRow = new QSpinBox;
    m_batchRow->setMinimum(1);
    m_batchRow->setMaximum(1);
    m_batchRow->setPrefix(tr("row "));
    auto *useRow = new QPushButton(tr("From batch"));
    for (QWidget *w : {static_cast<QWidget *>(zeros), static_cast<QWidget *>(random), static_cast<QWidget *>(m_batchRow),
                       static_cast<QWidget *>(useRow)})
        fills->addWidget(w);
    inLayout->addLayout(fills);
    left->addWidget(inBox, 1);

    // The device has a line of its own, the whole pane wide: its name and memory ("cuda:0 — NVIDIA
    // H200, 139.8 GiB, compute 9.0") are what tell devices apart. Precision and Run below it.
    auto *devRow = new QHBoxLayout;
    devRow->addWidget(new QLabel(tr("Device")));
    m_device = new ElidingComboBox;
    m_device->setObjectName(QStringLiteral("device"));
    // Its size hint is not its longest entry's: the pane keeps its width, the text is elided.
    m_device->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_device->setMinimumContentsLength(12);
    auto *devModel = new QStandardItemModel(m_device);
    auto *cpu = new QStandardItem(tr("CPU"));
    cpu->setData(QStringLiteral("cpu"), Qt::UserRole);
    devModel->appendRow(cpu);
    m_device->setModel(devModel);
    devRow->addWidget(m_device, 1);
    auto *runRow = new QHBoxLayout;
    m_precision = new QComboBox;
    auto *precisionModel = new QStandardItemModel(m_precision);
    for (const char *d : {"float32", "float16", "bfloat16"}) {
        auto *item = new QStandardItem(QString::fromLatin1(d));
        item->setData(QString::fromLatin1(d), Qt::UserRole);
        precisionModel->appendRow(item);
    }
    m_precision->setModel(precisionModel);
    m_precision->setToolTip(tr("Precision of the weights and inputs; the device decides which it runs"));
    runRow->addWidget(new QLabel(tr("Precision")));
    runRow->addWidget(m_precision);
    updatePrecisions();
    m_run = new QPushButton(tr("Run (Ctrl+Enter)"));
    m_run->setObjectName(QStringLiteral("run"));
    m_run->setDefault(true);
    runRow->addWidget(m_run, 1);
    auto *actionRows = new QVBoxLayout;
    actionRows->addLayout(devRow);
    actionRows->addLayout(runRow);

    // The settings scroll; the device and Run stay in a bar under them, always in view.
    auto *scroll = new QScrollArea;
    scroll->setObjectName(QStringLiteral("predictControls"));
    scroll->setWidget(controls);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    // Scrolled up and down only: the pane keeps the settings' least width (the splitter cannot
    // squeeze them under it), so that no field or button is cut at the side of a small window.
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setMinimumWidth(controls->minimumSizeHint().width() + scroll->verticalScrollBar()->sizeHint().width());
    auto *actionBar = new QFrame;
    actionBar->setObjectName(QStringLiteral("predictActions"));
    actionBar->setFrameShape(QFrame::StyledPanel);
    actionRows->setContentsMargins(8, 6, 8, 6);
    actionBar->setLayout(actionRows);
    auto *leftPane = new QWidget;
    auto *leftColumn = new QVBoxLayout(leftPane);
    leftColumn->setContentsMargins(0, 0, 0, 0);
    leftColumn->setSpacing(0);
    leftColumn->addWidget(scroll, 1);
    leftColumn->addWidget(actionBar);
    splitter->addWidget(leftPane);

    // Right: status, results table, chart, copy.
    auto *resultsPane = new QWidget;
    auto *right = new QVBoxLayout(resultsPane);
    m_status = new QLabel(tr("Choose an input and run"));
    m_status->setWordWrap(true);
    m_status->setTextFormat(Qt::PlainText);  // errors quote the model and the input
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    right->addWidget(m_status);
    // Right above the numbers it concerns, in the warning colours: a result that rests on a guessed
    // forward (and likely wrong for a residual block) must not read like an exact one.
    m_resultWarning = new QLabel;
    m_resultWarning->setObjectName(QStringLiteral("resultWarning"));
    m_resultWarning->setWordWrap(true);
    m_resultWarning->setTextFormat(Qt::PlainText);
    m_resultWarning->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_resultWarning->setStyleSheet(QStringLiteral("QLabel { background: #fdf2d0; color: #7a4b00; border: 1px solid "
                                                  "#e0b04a; border-radius: 3px; padding: 4px; }"));
    m_resultWarning->hide();
    right->addWidget(m_resultWarning);
    m_results = new QTableWidget(0, 4);
    m_results->setHorizontalHeaderLabels({tr("Sample"), tr("Top class"), tr("Probability"), tr("Top k")});
    // The columns share the pane's width, Top k taking the rest (elided; the whole list in its
    // tooltip), so that no column hides behind a horizontal scroll bar in a narrow window. Rows keep
    // one line: a batch may have thousands.
    {
        QHeaderView *hh = m_results->horizontalHeader();
        hh->setSectionResizeMode(0, QHeaderView::ResizeToContents);
        hh->setSectionResizeMode(1, QHeaderView::Interactive);
        hh->setSectionResizeMode(2, QHeaderView::ResizeToContents);
        hh->setSectionResizeMode(3, QHeaderView::Stretch);
        hh->resizeSection(1, 90);
        m_results->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
        m_results->setWordWrap(false);
        m_results->setTextElideMode(Qt::ElideRight);
    }
    m_results->verticalHeader()->setVisible(false);
    m_results->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_results->setSelectionMode(QAbstractItemView::SingleSelection);
    m_results->setEditTriggers(QAbstractItemView::NoEditTriggers);
    right->addWidget(m_results, 1);
    m_chart = new QChartView;
    m_chart->setObjectName(QStringLiteral("probabilities"));
    m_chart->setRenderHint(QPainter::Antialiasing);
    m_chart->setMinimumHeight(220);
    right->addWidget(m_chart, 2);
    m_rule = new QLabel;
    m_rule->setObjectName(QStringLiteral("probabilityRule"));
    m_rule->setWordWrap(true);
    m_rule->setTextFormat(Qt::PlainText);
    m_rule->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_rule->hide();
    right->addWidget(m_rule);
    showEmptyChart();
    auto *copyRow = new QHBoxLayout;
    // How the outputs are read: as ckpt predict --probabilities. A change reads the shown result
    // again (the outputs are kept; the model does not run again).
    m_probabilities = new QComboBox;
    m_probabilities->setObjectName(QStringLiteral("probabilitiesFrom"));
    const std::pair<const char *, QString> readings[] = {
        {"auto", tr("Probabilities: automatic")},
        {"softmax", tr("Probabilities: softmax")},
        {"sigmoid", tr("Probabilities: sigmoid, each output")},
        {"none", tr("Values, no probabilities")},
    };
    for (const auto &[id, label] : readings)
        m_probabilities->addItem(label, QString::fromLatin1(id));
    m_probabilities->setToolTip(
        tr("Automatic: softmax over the outputs; sigmoid for a single output (a binary classifier); as the "
           "model gives them when it ends in Softmax, Sigmoid or LogSoftmax.\nSigmoid, each output: a "
           "multi-label head, every output its own yes/no.\nValues: the outputs as they are (a regression), "
           "ranked by value."));
    connect(m_probabilities, &QComboBox::currentIndexChanged, this, [this] {
        if (!m_result)
            return;
        rereadOutputs();
        showResult();
    });
    copyRow->addWidget(m_probabilities);
    auto *copyText = new QPushButton(tr("Copy as text"));
    auto *copyJson = new QPushButton(tr("Copy as JSON"));
    copyRow->addStretch(1);
    copyRow->addWidget(copyText);
    copyRow->addWidget(copyJson);
    right->addLayout(copyRow);
    splitter->addWidget(resultsPane);
    splitter->setStretchFactor(1, 1);

    connect(apply, &QPushButton::clicked, this, &PredictionView::applyArchitecture);
    connect(m_archSource, &QComboBox::currentIndexChanged, this, [this](int) { applyArchitecture(); });
    connect(m_activation, &QComboBox::currentIndexChanged, this, [this](int) { applyArchitecture(); });
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("TorchScript file of the model"), dialogfolders::openStart(),
                                                       tr("TorchScript (*.pt *.pth *.zip);;All files (*)"));
        if (f.isEmpty())
            return;
        m_scriptPath->setText(f);
        m_archSource->setCurrentIndex(1);
        applyArchitecture();
    });
    connect(m_shape, &QLineEdit::editingFinished, this, &PredictionView::rebuildForm);
    connect(zeros, &QPushButton::clicked, this, &PredictionView::fillZeros);
    connect(random, &QPushButton::clicked, this, &PredictionView::fillRandom);
    connect(useRow, &QPushButton::clicked, this, [this] { fillFromBatchRow(m_batchRow->value() - 1); });
    connect(m_batch, &QPlainTextEdit::textChanged, this, [this] {
        m_batchRow->setMaximum(std::max(1, static_cast<int>(m_batch->toPlainText().count(QLatin1Char('\n'))) + 1));
    });
    connect(batchFile, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Input rows"), dialogfolders::openStart(), tr("Inputs (*.csv *.npy *.txt)"));
        if (f.isEmpty())
            return;
        QFile file(f);
        if (!file.open(QIODevice::ReadOnly) || file.size() > (qint64{64} << 20)) {
            setStatus(tr("%1: cannot be read (or larger than 64 MiB)").arg(f), true);
            return;
        }
        const QByteArray bytes = file.readAll();
        try {
            if (f.endsWith(QLatin1String(".npy"), Qt::CaseInsensitive)) {
                const InputTable t = parseNpy(bytes.toStdString(), f.toStdString());
                const std::int64_t rows = t.shape.empty() ? 1 : t.shape[0];
                const std::int64_t cols = rows ? static_cast<std::int64_t>(t.values.size()) / rows : 0;
                QString text;
                for (std::int64_t r = 0; r < rows; ++r) {
                    QStringList vals;
                    for (std::int64_t c = 0; c < cols; ++c)
                        vals << QString::number(t.values[static_cast<std::size_t>(r * cols + c)], 'g', 17);
                    text += vals.join(QStringLiteral(",")) + QLatin1Char('\n');
                }
                m_batch->setPlainText(text);
            } else {
                m_batch->setPlainText(QString::fromUtf8(bytes));
            }
            m_inputTabs->setCurrentIndex(BatchTab);
        } catch (const std::exception &e) {
            setStatus(q(e.what()), true);
        }
    });
    connect(openImage, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Image"), dialogfolders::openStart(), tr("Images (*.png *.jpg *.jpeg *.bmp)"));
        QString error;
        if (!f.isEmpty() && !loadImage(f, &error))
            setStatus(error, true);
    });
    connect(m_device, &QComboBox::currentIndexChanged, this, [this](int) {
        updatePrecisions();
        updateDeviceToolTip();
    });
    connect(m_run, &QPushButton::clicked, this, &PredictionView::run);
    connect(copyText, &QPushButton::clicked, this, &PredictionView::copyText);
    connect(copyJson, &QPushButton::clicked, this, &PredictionView::copyJson);
    connect(m_results, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
        if (row >= 0)
            showChart(row);
    });
    for (auto key : {Qt::Key_Return, Qt::Key_Enter}) {
        auto *shortcut = new QShortcut(QKeySequence(Qt::CTRL | key), this);
        // Anywhere in the window while the pane is shown (a hidden pane's shortcut is not live),
        // not only with the keyboard already inside it.
        shortcut->setContext(Qt::WindowShortcut);
        connect(shortcut, &QShortcut::activated, this, &PredictionView::run);
    }
    updateSourceFields();
}

PredictionView::~PredictionView() = default;

void PredictionView::setDocument(std::shared_ptr<const Document> doc)
{
    m_doc = std::move(doc);
    ++m_generation;  // a run still going for the previous document is dropped when it ends
    m_result.reset();
    m_resultWarnings.clear();
    m_resultWarning->hide();
    m_rule->hide();
    m_image.reset();
    m_results->setRowCount(0);
    showEmptyChart();
    m_pre = m_doc ? preprocessingOf(*m_doc) : Preprocessing{};
    m_classes = m_doc ? classNamesOf(*m_doc) : std::vector<std::string>{};
    m_features = m_doc ? featureNamesOf(*m_doc) : std::vector<std::string>{};
    m_normalize->setEnabled(m_pre.present());
    m_normalize->setChecked(m_pre.present());
    m_normalize->setVisible(m_pre.present());  // nothing to switch: the line below says why
    if (m_pre.present()) {
        auto list = [](const std::vector<double> &v) {
            QStringList s;
            for (std::size_t i = 0; i < v.size() && i < 8; ++i)
                s << QString::number(v[i], 'g', 4);
            return s.join(QStringLiteral(", ")) + (v.size() > 8 ? QStringLiteral(", …") : QString());
        };
        m_preLabel->setText(tr("From %1, %2 values — mean %3; std %4")
                                .arg(q(m_pre.source))
                                .arg(m_pre.mean.size())
                                .arg(list(m_pre.mean), list(m_pre.std)));
    } else {
        m_preLabel->setText(m_pre.problem.empty() ? tr("The file carries no input mean/std")
                                                  : tr("Not applied: %1").arg(q(m_pre.problem)));
    }
    // The picture steps the package states (applied to an image input, as torchvision would), and
    // what it states but is not applied: said, never dropped silently.
    if (m_doc) {
        const ImagePreprocessing geometry = imagePreprocessingOf(*m_doc);
        auto sizes = [](const std::vector<std::int64_t> &v) {
            QStringList s;
            for (auto x : v)
                s << QString::number(x);
            return s.join(QStringLiteral(", "));
        };
        QStringList lines;
        if (!geometry.resize.empty())
            lines << tr("Pictures: Resize(%1) from %2").arg(sizes(geometry.resize), q(geometry.resizeKey));
        if (!geometry.crop.empty())
            lines << tr("Pictures: CenterCrop(%1) from %2").arg(sizes(geometry.crop), q(geometry.cropKey));
        if (!geometry.filterKey.empty())
            lines << tr("Pictures: resized with PIL's %1 filter, from %2")
                         .arg(QString::fromUtf8(filterName(geometry.filter)), q(geometry.filterKey));
        for (const auto &n : geometry.notApplied)
            lines << tr("Not applied: %1").arg(q(n));
        if (!lines.isEmpty())
            m_preLabel->setText(m_preLabel->text() + QStringLiteral("\n") + lines.join(QStringLiteral("\n")));
    }
    {
        const QSignalBlocker block(m_archSource);
        m_archSource->setCurrentIndex(0);
    }
    m_spec->clear();
    applyArchitecture();
    requestDevices();
}

void PredictionView::showEvent(QShowEvent *event)
{
    QWidget::showEvent(event);
    requestDevices();
}

void PredictionView::requestDevices()
{
    // Listing devices loads LibTorch (a quarter of a second or more). Not before the pane is seen
    // with a file in it: at start-up, the file's own reading would wait for the loader's lock.
    if (m_devicesRequested || !m_doc || !isVisible())
        return;
    m_devicesRequested = true;
    listDevices();
}

void PredictionView::applyArchitecture()
{
    ++m_archVersion;
    m_predictor.reset();
    m_arch.reset();
    m_archError.clear();
    if (!m_doc) {
        m_archLabel->setText(QString());
        updateSourceFields();
        return;
    }
    ArchitectureRequest request;
    request.activation = m_activation->currentText().toStdString();
    const int source = m_archSource->currentIndex();
    if (source == 1)
        request.scriptPath = m_scriptPath->text().toStdString();
    else if (source == 2)
        request.spec = m_spec->toPlainText().toStdString();
    try {
        if (source == 1 && request.scriptPath.empty())
            throw std::runtime_error(tr("choose the TorchScript file").toStdString());
        if (source == 2 && request.spec.empty())
            throw std::runtime_error(tr("write the spec").toStdString());
        m_arch = resolveArchitecture(*m_doc, request);
    } catch (const std::exception &e) {
        m_archError = paneWording(e.what());
    }
    m_activation->setEnabled(source == 0 && m_arch && m_arch->source == Architecture::Source::InferredMlp);
    updateSourceFields();
    if (!m_arch) {
        m_archLabel->setText(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(m_archError.toHtmlEscaped()));
        m_shape->clear();
        m_inputNote->clear();
        m_inputNote->hide();
        rebuildForm();
        return;
    }
    // Propose the spec the application runs, so that the user can edit it.
    if (source == 0 && !m_arch->root.type.empty())
        m_spec->setPlainText(q(specOf(*m_arch).dump(1)));
    QString title = architectureSourceTitle(m_arch->source);  // a phrase: as a title, capitalised
    if (!title.isEmpty())
        title[0] = title[0].toUpper();
    QString html = QStringLiteral("<b>%1</b> — %2").arg(title.toHtmlEscaped(),
                                                        m_arch->exact ? tr("exact") : tr("not exact"));
    for (const auto &a : m_arch->assumptions)
        html += QStringLiteral("<br>• <i>%1</i>").arg(paneWording(a).toHtmlEscaped());
    QStringList lines;
    for (const auto &l : describeArchitecture(*m_arch))
        lines << q(l).toHtmlEscaped();
    m_archLabel->setToolTip(QStringLiteral("<pre>%1</pre>").arg(lines.join(QLatin1Char('\n'))));
    m_archLabel->setText(html);
    m_shape->setText(shapeString(proposedSampleShape()));
    if (m_arch->integerInput) {
        // An Embedding takes token ids, not values: say so, with their range and how to size a sample.
        const auto rows = indexCount(*m_arch);
        m_inputNote->setText(
            (rows ? tr("This model starts with an Embedding: its input is integer token ids (indices), from 0 to "
                       "%1, one per position.")
                        .arg(*rows - 1)
                  : tr("This model starts with an Embedding: its input is integer token ids (indices), one per "
                       "position.")) +
            (m_arch->inputShape.empty() || m_arch->inputShape[0] < 0
                 ? tr(" The file does not say how many positions: replace the ? of the sample shape with the "
                      "sequence length (for example 8).")
                 : QString()));
    } else {
        m_inputNote->clear();
    }
    m_inputNote->setVisible(!m_inputNote->text().isEmpty());
    rebuildForm();
}

void PredictionView::updateSourceFields()
{
    const int source = m_archSource->currentIndex();
    // The TorchScript field and Browse serve the TorchScript source only; the spec box the Spec
    // source (it holds the spec inferred from the file, to edit once Spec is chosen); Apply both,
    // as the file's own architecture follows its controls by itself. Hidden where they do not apply,
    // so that the input comes up into view.
    m_scriptPath->setEnabled(source == 1);
    m_browse->setEnabled(source == 1);
    m_spec->setEnabled(source == 2);
    m_apply->setEnabled(source != 0);
    m_archForm->setRowVisible(m_pathRow, source == 1);
    m_archForm->setRowVisible(m_spec, source == 2);
    m_archForm->setRowVisible(m_apply, source != 0);
}

std::vector<std::int64_t> PredictionView::proposedSampleShape() const
{
    // The choice ckpt predict makes too (a package's crop size where the layers take any size).
    if (!m_arch)
        return {};
    return m_doc ? ckpt::proposedSampleShape(*m_doc, *m_arch) : m_arch->inputShape;
}

std::vector<std::int64_t> PredictionView::sampleShape() const
{
    std::vector<std::int64_t> out;
    const auto parts = m_shape->text().split(QRegularExpression(QStringLiteral("[,x× ]+")), Qt::SkipEmptyParts);
    for (const QString &p : parts) {
        bool ok = false;
        const auto v = p.toLongLong(&ok);
        out.push_back(ok && v > 0 ? v : -1);
    }
    return out;
}

void PredictionView::rebuildForm()
{
    const auto shape = sampleShape();
    const bool vector = shape.size() == 1 && shape[0] > 0 && shape[0] <= 4096;
    const int n = vector ? static_cast<int>(shape[0]) : 0;
    m_form->setRowCount(n);
    for (int i = 0; i < n; ++i) {
        const QString name = m_features.size() == static_cast<std::size_t>(n) ? q(m_features[static_cast<std::size_t>(i)])
                                                                              : QStringLiteral("x[%1]").arg(i);
        auto *label = new QTableWidgetItem(name);
        label->setFlags(label->flags() & ~Qt::ItemIsEditable);
        m_form->setItem(i, 0, label);
        if (!m_form->item(i, 1))
            m_form->setItem(i, 1, new QTableWidgetItem(QStringLiteral("0")));
    }
    m_inputTabs->setTabEnabled(FormTab, vector);
    // A picture for a convolutional model, or for an MLP whose features a picture's pixels make
    // (ckpt predict's rule: an MNIST MLP's 784 features, a 1×28×28 picture).
    const bool image = (shape.size() == 3 && (shape[0] == 1 || shape[0] == 3 || shape[0] == 4)) ||
                       (m_doc && m_arch && pictureShape(*m_doc, *m_arch, shape));
    m_inputTabs->setTabEnabled(ImageTab, image);
    if (!vector && m_inputTabs->currentIndex() == FormTab)
        m_inputTabs->setCurrentIndex(image ? ImageTab : BatchTab);
}

void PredictionView::fillZeros()
{
    for (int i = 0; i < m_form->rowCount(); ++i)
        m_form->item(i, 1)->setText(QStringLiteral("0"));
    m_inputTabs->setCurrentIndex(FormTab);
}

void PredictionView::fillRandom()
{
    std::mt19937 gen(QRandomGenerator::global()->generate());
    if (m_arch && m_arch->integerInput) {
        // Indices into the Embedding, not values: Gaussian floats are not accepted by Run.
        const std::int64_t rows = indexCount(*m_arch).value_or(1);
        std::uniform_int_distribution<std::int64_t> index(0, rows - 1);
        for (int i = 0; i < m_form->rowCount(); ++i)
            m_form->item(i, 1)->setText(QString::number(index(gen)));
        m_inputTabs->setCurrentIndex(FormTab);
        return;
    }
    std::normal_distribution<double> normal(0.0, 1.0);
    for (int i = 0; i < m_form->rowCount(); ++i) {
        // Around the package's mean and spread when it has them, so the normalised input is N(0, 1).
        double v = normal(gen);
        if (m_pre.present() && m_pre.mean.size() == static_cast<std::size_t>(m_form->rowCount()))
            v = m_pre.mean[static_cast<std::size_t>(i)] + v * m_pre.std[static_cast<std::size_t>(i)];
        m_form->item(i, 1)->setText(QString::number(v, 'g', 6));
    }
    m_inputTabs->setCurrentIndex(FormTab);
}

void PredictionView::fillFromBatchRow(int row)
{
    try {
        const InputTable t = parseCsv(m_batch->toPlainText().toStdString(), "batch");
        if (row < 0 || row >= t.shape[0])
            throw std::runtime_error(
                tr("the batch has %1").arg(valuetext::counted(t.shape[0], tr("row"), tr("rows"))).toStdString());
        if (t.shape[1] != m_form->rowCount())
            throw std::runtime_error(
                tr("the batch has %1 values per row, the form %2").arg(t.shape[1]).arg(m_form->rowCount()).toStdString());
        for (int i = 0; i < m_form->rowCount(); ++i)
            m_form->item(i, 1)->setText(
                QString::number(t.values[static_cast<std::size_t>(row * t.shape[1] + i)], 'g', 17));
        m_inputTabs->setCurrentIndex(FormTab);
    } catch (const std::exception &e) {
        setStatus(q(e.what()), true);
    }
}

bool PredictionView::loadImage(const QString &path, QString *error)
{
    auto fail = [error](const QString &why) {
        if (error)
            *error = why;
        return false;
    };
    const auto sample = sampleShape();
    auto shape = sample;
    std::string how;  // how a picture becomes an MLP's features, for the note
    if (!(shape.size() == 3 && (shape[0] == 1 || shape[0] == 3 || shape[0] == 4))) {
        const auto picture = m_doc && m_arch ? pictureShape(*m_doc, *m_arch, sample, &how) : std::nullopt;
        if (!picture)
            return fail(tr("this model does not take images (its samples have shape [%1])").arg(shapeString(shape)));
        shape = *picture;
    }
    QFile file(path);
    constexpr qint64 kMaxImageFile = qint64{256} << 20;
    if (!file.open(QIODevice::ReadOnly))
        return fail(tr("%1: %2").arg(path, file.errorString()));
    if (file.size() > kMaxImageFile)
        return fail(tr("%1: the image file is larger than 256 MiB").arg(path));
    const QByteArray bytes = file.readAll();
    // The same decoding as `ckpt predict --input-file`: a model that takes any size (or whose size
    // is not given) runs the image at its own size; a grey model gets PIL's convert('L').
    InputTable t;
    try {
        const std::string data = bytes.toStdString();
        // The package's own Resize and CenterCrop first (torchvision's rules), then the model's
        // size where it has one: the steps ckpt predict takes.
        const ImageSteps stated = m_doc ? statedImageSteps(imagePreprocessingOf(*m_doc)) : ImageSteps{};
        ImageSteps steps = stated;
        if (m_arch) {
            steps = imageSteps(data, *m_arch, shape, stated);
        } else if (shape[1] > 0 && shape[2] > 0) {
            steps.height = static_cast<int>(shape[1]);
            steps.width = static_cast<int>(shape[2]);
        }
        t = parseImage(data, QFileInfo(path).fileName().toStdString(), static_cast<int>(shape[0]), steps);
    } catch (const std::exception &e) {
        return fail(q(e.what()));
    }
    PredictionInput in;
    in.shape = t.shape;
    in.values = std::move(t.values);
    in.note = t.note;
    const auto h = in.shape[2], w = in.shape[3];
    if (!how.empty()) {
        // A Linear first takes the features flat; a Flatten first takes the picture as it is.
        if (!m_arch || !takesInput(*m_arch, shape))
            in.shape = {1, sample[0]};
        in.note += (in.note.empty() ? "" : "; ") + how;
    }
    QImage preview;
    preview.loadFromData(bytes);
    m_imagePreview->setPixmap(preview.isNull() ? QPixmap()
                                               : QPixmap::fromImage(preview.scaled(160, 160, Qt::KeepAspectRatio, Qt::FastTransformation)));
    m_imagePreview->setToolTip(tr("%1, as %2×%3, %4 channel(s)%5")
                                   .arg(path)
                                   .arg(w)
                                   .arg(h)
                                   .arg(shape[0])
                                   .arg(in.note.empty() ? QString() : QStringLiteral("\n") + q(in.note)));
    m_image = std::move(in);
    m_inputTabs->setCurrentIndex(ImageTab);
    return true;
}

std::optional<PredictionInput> PredictionView::gatherInput(QString *error) const
{
    try {
        PredictionInput in;
        const auto shape = sampleShape();
        switch (m_inputTabs->currentIndex()) {
        case FormTab: {
            if (m_form->rowCount() == 0)
                throw std::runtime_error(tr("the form has no fields: give the sample shape").toStdString());
            for (int i = 0; i < m_form->rowCount(); ++i) {
                const auto v = parseRow(m_form->item(i, 1)->text().toStdString(),
                                        m_form->item(i, 0)->text().toStdString());
                if (v.size() != 1)
                    throw std::runtime_error(m_form->item(i, 0)->text().toStdString() + ": one number per field");
                in.values.push_back(v[0]);
            }
            in.shape = {1};
            in.shape.insert(in.shape.end(), shape.begin(), shape.end());
            break;
        }
        case BatchTab: {
            const InputTable t = parseCsv(m_batch->toPlainText().toStdString(), "batch");
            in.values = t.values;
            in.shape = batchShape(t.shape[0], t.shape[1], shape);
            break;
        }
        default:
            if (!m_image)
                throw std::runtime_error(tr("open an image first").toStdString());
            in = *m_image;
            break;
        }
        return in;
    } catch (const std::exception &e) {
        if (error)
            *error = q(e.what());
        return std::nullopt;
    }
}

void PredictionView::run()
{
    if (m_running || !m_doc)
        return;
    if (!m_arch) {
        m_runError = tr("no architecture: %1").arg(m_archError);
        setStatus(m_runError, true);
        Q_EMIT finished(false);
        return;
    }
    QString error;
    auto input = gatherInput(&error);
    if (!input) {
        m_runError = error;
        setStatus(error, true);
        Q_EMIT finished(false);
        return;
    }
    PredictOptions options;
    options.onDevice(m_device->currentData(Qt::UserRole).toString().toStdString())
        .normalized(m_normalize->isChecked())
        .precision(m_precision->currentData(Qt::UserRole).toString().toStdString())
        .top(5)
        .classes(m_classes)
        .probabilitiesBy(m_probabilities->currentData().toString().toStdString());
    if (m_pre.present())
        options.normalization(m_pre.mean, m_pre.std);
    m_running = true;
    m_run->setEnabled(false);
    setStatus(tr("Running…"), false);
    const quint64 generation = ++m_generation;
    const quint64 archVersion = m_archVersion;
    auto *watcher = new QFutureWatcher<RunOutcome>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, generation, archVersion,
                                                           shape = input->shape, output = m_arch->output,
                                                           warnings = m_arch->warnings] {
        watcher->deleteLater();
        m_running = false;
        m_run->setEnabled(true);
        if (generation != m_generation)
            return;  // a newer document or run took over
        RunOutcome out = watcher->result();
        if (archVersion == m_archVersion)
            m_predictor = out.predictor;  // keep the loaded model for the next run
        if (!out.result) {
            m_runError = out.error;
            setStatus(out.error, true);
            Q_EMIT finished(false);
            return;
        }
        m_runError.clear();
        m_result = std::move(out.result);
        m_resultOutput = output;
        m_resultWarnings = warnings;
        m_notes = out.notes;
        m_resultInputShape = shape;
        rereadOutputs();  // the reading chosen while it ran, if it changed
        showResult();
        Q_EMIT finished(true);
    });
    watcher->setFuture(QtConcurrent::run(jobPool(), [doc = m_doc, arch = *m_arch, predictor = m_predictor, in = std::move(*input),
                                          options]() mutable {
        RunOutcome out;
        try {
            if (!predictor)
                predictor = ComputeLoader::api().predictor(*doc, arch);  // loads LibTorch on first use
            out.result = predictor->run(in, options);
            out.notes = predictor->notes();
            if (!in.note.empty())
                out.notes.push_back(in.note);
        } catch (const std::exception &e) {
            out.error = paneWording(e.what());
        }
        out.predictor = predictor;
        return out;
    }));
}

void PredictionView::rereadOutputs()
{
    readOutputs(*m_result, m_resultOutput, m_probabilities->currentData().toString().toStdString(), 5, m_classes);
}

void PredictionView::showResult()
{
    const auto &r = *m_result;
    const bool values = r.probabilitiesFrom == "none";
    m_results->setHorizontalHeaderItem(2, new QTableWidgetItem(values ? tr("Value") : tr("Probability")));
    m_results->setRowCount(static_cast<int>(r.outputs.size()));
    for (int i = 0; i < static_cast<int>(r.outputs.size()); ++i) {
        const auto &s = r.outputs[static_cast<std::size_t>(i)];
        // A probability to four places, or (values asked for) the model's output itself.
        const auto figure = [values](const TopClass &t) {
            return values ? QString::number(t.value, 'g', 6) : QString::number(t.probability, 'f', 4);
        };
        QStringList top;
        for (const auto &t : s.top)
            top << QStringLiteral("%1 %2").arg(t.label.empty() ? QStringLiteral("#%1").arg(t.index) : q(t.label))
                       .arg(figure(t));
        const TopClass best = s.top.empty() ? TopClass{} : s.top.front();
        m_results->setItem(i, 0, new QTableWidgetItem(QString::number(i + 1)));
        m_results->setItem(i, 1, new QTableWidgetItem(best.label.empty() ? QStringLiteral("#%1").arg(best.index) : q(best.label)));
        m_results->setItem(i, 2, new QTableWidgetItem(figure(best)));
        auto *topItem = new QTableWidgetItem(top.join(QStringLiteral(", ")));
        topItem->setToolTip(top.join(QLatin1Char('\n')));
        m_results->setItem(i, 3, topItem);
    }
    m_results->resizeColumnToContents(1);
    m_results->horizontalHeader()->resizeSection(1, std::min(m_results->horizontalHeader()->sectionSize(1), 160));
    // English plurals by hand: tr("%n sample(s)") shows "(s)" as long as no translation is loaded.
    QString status = tr("Ran %1 on %2 in %3 ms")
                         .arg(valuetext::counted(static_cast<qint64>(r.outputs.size()), tr("sample"), tr("samples")))
                         .arg(q(r.device) + (r.dtype != "float32" ? QStringLiteral(" (%1)").arg(q(r.dtype)) : QString()))
                         .arg(r.latencyMs, 0, 'f', 2);
    status += r.normalized ? tr(" · normalised with %1").arg(q(m_pre.source))
                           : m_pre.problem.empty() ? tr(" · not normalised")
                                                   : tr(" · not normalised: %1").arg(q(m_pre.problem));
    for (const auto &n : m_notes)
        status += QStringLiteral("\n") + tr("note: %1").arg(paneWording(n));
    setStatus(status, false);
    QStringList warnings;
    for (const auto &w : m_resultWarnings)
        warnings << tr("Warning: %1").arg(paneWording(w));
    m_resultWarning->setText(warnings.join(QStringLiteral("\n\n")));
    m_resultWarning->setVisible(!warnings.isEmpty());
    m_rule->setText(q(probabilityRule(r)));
    m_rule->setVisible(true);
    m_results->setCurrentCell(0, 0);
    showChart(0);
}

void PredictionView::showChart(int sample)
{
    if (!m_result || sample < 0 || sample >= static_cast<int>(m_result->outputs.size()))
        return;
    const auto &s = m_result->outputs[static_cast<std::size_t>(sample)];
    // The probabilities, or the outputs themselves when values were asked for.
    const bool values = m_result->probabilitiesFrom == "none";
    const std::vector<double> &bars = values ? s.logits : s.probabilities;
    // Every class when there are few; the 20 most probable (largest) otherwise.
    std::vector<std::size_t> shown(bars.size());
    std::iota(shown.begin(), shown.end(), 0);
    if (shown.size() > 20) {
        std::partial_sort(shown.begin(), shown.begin() + 20, shown.end(),
                          [&bars](std::size_t a, std::size_t b) { return outputRanksBefore(bars[a], bars[b]); });
        shown.resize(20);
    }
    auto *set = new QBarSet(values ? tr("value") : tr("probability"));
    const bool named = isScorePerClass(sampleOutputShape(*m_result));
    QStringList categories;
    double low = 0, high = values ? 0 : 1;
    for (auto i : shown) {
        *set << bars[i];
        if (values && std::isfinite(bars[i])) {
            low = std::min(low, bars[i]);
            high = std::max(high, bars[i]);
        }
        // A map's flattened values are not classes: named by index only, as readOutputs names them.
        categories << (named && i < m_classes.size() ? q(m_classes[i]) : QString::number(i));
    }
    if (low == high)
        high = low + 1;
    auto *series = new QBarSeries;
    series->append(set);
    auto *chart = new QChart;
    chart->addSeries(series);
    chart->setTitle(values ? tr("Sample %1: outputs").arg(sample + 1) : tr("Sample %1: probabilities").arg(sample + 1));
    chart->legend()->hide();
    auto *x = new QBarCategoryAxis;
    x->append(categories);
    auto *y = new QValueAxis;
    y->setRange(low, high);
    if (values)
        y->applyNiceNumbers();
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    styleChart(chart);
    QChart *old = m_chart->chart();
    m_chart->setChart(chart);
    delete old;
}

void PredictionView::showEmptyChart()
{
    // Until a run, the chart's place says what will be drawn there, in the placeholder colour on
    // the pane's own background (as the histograms do): a hint, not a blank white panel.
    auto *empty = new QChart;
    // Short: QChart elides a title wider than the chart, and the pane may be narrow.
    empty->setTitle(m_doc ? tr("Class probabilities appear here after Run") : tr("No model to run"));
    empty->legend()->hide();
    styleChart(empty);
    QChart *old = m_chart->chart();
    m_chart->setChart(empty);
    delete old;  // the view gives up ownership of a replaced chart
}

QString PredictionView::chartPlaceholder() const
{
    const QChart *chart = m_chart->chart();
    return chart && chart->series().isEmpty() ? chart->title() : QString();
}

void PredictionView::styleChart(QChart *chart) const
{
    if (!chart)
        return;
    const QPalette &p = palette();
    const bool empty = chart->series().isEmpty();
    chart->setBackgroundBrush(p.color(empty ? QPalette::Window : QPalette::Base));
    chart->setTitleBrush(p.color(empty ? QPalette::PlaceholderText : QPalette::Text));
    chart->legend()->setLabelColor(p.color(QPalette::Text));
    for (QAbstractAxis *axis : chart->axes()) {
        axis->setLabelsColor(p.color(QPalette::Text));
        axis->setLinePenColor(p.color(QPalette::Mid));
        axis->setGridLineColor(p.color(QPalette::Mid));
    }
}

void PredictionView::changeEvent(QEvent *event)
{
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange && m_chart)
        styleChart(m_chart->chart());
}

// The precisions the chosen device runs, from its listing; until devices are listed (or for a
// device not listed) float32 alone.
void PredictionView::updatePrecisions()
{
    const std::string id = m_device->currentData(Qt::UserRole).toString().toStdString();
    std::vector<std::string> offered{"float32"};
    for (const auto &d : m_devices)
        if (d.id == id && d.available)
            offered = d.dtypes;
    auto *model = qobject_cast<QStandardItemModel *>(m_precision->model());
    for (int i = 0; i < model->rowCount(); ++i) {
        QStandardItem *item = model->item(i);
        const bool ok = std::find(offered.begin(), offered.end(), item->data(Qt::UserRole).toString().toStdString()) !=
                        offered.end();
        item->setFlags(ok ? item->flags() | Qt::ItemIsEnabled | Qt::ItemIsSelectable
                          : item->flags() & ~(Qt::ItemIsEnabled | Qt::ItemIsSelectable));
        item->setToolTip(ok ? QString() : tr("%1 does not run %2").arg(q(id), item->text()));
    }
    if (!(model->item(m_precision->currentIndex())->flags() & Qt::ItemIsEnabled))
        m_precision->setCurrentIndex(0);
}

void PredictionView::listDevices()
{
    auto *watcher = new QFutureWatcher<std::vector<DeviceInfo>>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        watcher->deleteLater();
        m_devices = watcher->result();
        if (m_devices.empty())
            return;
        auto *model = qobject_cast<QStandardItemModel *>(m_device->model());
        const QString current = m_device->currentData(Qt::UserRole).toString();
        model->clear();
        for (const auto &d : m_devices) {
            auto *item = new QStandardItem(d.available ? q(d.label) : tr("%1 — %2").arg(q(d.label), q(d.reason)));
            item->setData(q(d.id), Qt::UserRole);
            if (d.available && !d.name.empty())
                item->setToolTip(tr("%1\nprecisions: %2").arg(q(d.label), QString::fromStdString(joinText(d.dtypes))));
            if (!d.available) {
                item->setFlags(item->flags() & ~(Qt::ItemIsEnabled | Qt::ItemIsSelectable));
                item->setToolTip(q(d.reason));
            }
            model->appendRow(item);
        }
        const int keep = m_device->findData(current, Qt::UserRole);
        m_device->setCurrentIndex(keep >= 0 ? keep : 0);
        updatePrecisions();
        updateDeviceToolTip();
        Q_EMIT devicesListed();
    });
    watcher->setFuture(QtConcurrent::run(jobPool(), []() -> std::vector<DeviceInfo> {
        try {
            return ComputeLoader::api().devices();
        } catch (const std::exception &e) {
            DeviceInfo cpu, cuda;
            cpu.id = "cpu";
            cpu.label = "CPU";
            cpu.available = true;
            cpu.dtypes = {"float32"};
            cuda.id = "cuda";
            cuda.label = "CUDA";
            cuda.reason = e.what();
            return {cpu, cuda};
        }
    }));
}

void PredictionView::updateDeviceToolTip()
{
    // The whole name, however narrow the box: the chosen entry's own tooltip (precisions) after it.
    const QString text = m_device->currentText();
    const QString more = m_device->itemData(m_device->currentIndex(), Qt::ToolTipRole).toString();
    m_device->setToolTip(more.startsWith(text) ? more : more.isEmpty() ? text : text + QLatin1Char('\n') + more);
}

void PredictionView::setStatus(const QString &text, bool error)
{
    m_status->setText(text);
    m_status->setStyleSheet(error ? QStringLiteral("color: #c0392b") : QString());
}

QString PredictionView::resultText() const
{
    return m_result ? q(predictionToText(*m_result, m_resultWarnings)) : QString();
}

QString PredictionView::resultJson() const
{
    if (!m_result || !m_arch)
        return {};
    return q(predictionToJson(*m_result, *m_arch, m_notes, m_resultInputShape).dump(1));
}

void PredictionView::copyText() const { QApplication::clipboard()->setText(resultText()); }
void PredictionView::copyJson() const { QApplication::clipboard()->setText(resultJson()); }

} // namespace ckpt
