#pragma once

#include "architecture.h"
#include "computeapi.h"
#include "inferencemeta.h"

#include <QString>
#include <QWidget>

#include <memory>
#include <optional>
#include <vector>

class QChart;
class QCheckBox;
class QChartView;
class QComboBox;
class QFormLayout;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QShowEvent;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableWidget;

namespace ckpt {

struct Document;

// Interactive predictions for one document: the architecture that runs it (and how exact it is),
// the package's preprocessing (switchable), an input editor (a form with one field per feature, a
// pasted CSV batch, an image), the device, and the results (top classes, probabilities as a bar
// chart, a table for batches, latency). LibTorch is loaded and the model run off the GUI thread.
class PredictionView : public QWidget {
    Q_OBJECT
public:
    enum InputTab { FormTab, BatchTab, ImageTab };

    explicit PredictionView(QWidget *parent = nullptr);
    ~PredictionView() override;
    void setDocument(std::shared_ptr<const Document> doc);

    // The architecture now chosen, when one could be resolved; else why not (architectureError).
    const std::optional<Architecture> &architecture() const { return m_arch; }
    QString architectureError() const { return m_archError; }
    const Preprocessing &preprocessing() const { return m_pre; }
    bool hasResult() const { return m_result.has_value(); }
    const PredictionResult &result() const { return *m_result; }
    // The last run's error ("" after a success).
    QString runError() const { return m_runError; }
    bool isRunning() const { return m_running; }

    // Widgets, for tests and the window.
    QComboBox *architectureSource() const { return m_archSource; }
    QComboBox *activationBox() const { return m_activation; }
    QLineEdit *scriptPathEdit() const { return m_scriptPath; }
    QPlainTextEdit *specEdit() const { return m_spec; }
    QLabel *architectureLabel() const { return m_archLabel; }
    QCheckBox *normalizeBox() const { return m_normalize; }
    QLineEdit *shapeEdit() const { return m_shape; }
    QTabWidget *inputTabs() const { return m_inputTabs; }
    QTableWidget *formTable() const { return m_form; }
    QPlainTextEdit *batchEdit() const { return m_batch; }
    QComboBox *deviceBox() const { return m_device; }
    QComboBox *precisionBox() const { return m_precision; }
    // How outputs are read: auto, softmax, sigmoid, none (values), as --probabilities.
    QComboBox *probabilitiesBox() const { return m_probabilities; }
    QPushButton *runButton() const { return m_run; }
    QTableWidget *resultsTable() const { return m_results; }
    QChartView *chartView() const { return m_chart; }
    // What the chart's place says before a run ("" while it shows probabilities).
    QString chartPlaceholder() const;
    QLabel *statusLabel() const { return m_status; }
    // Above the results: what may make them wrong (a forward the file does not carry); hidden when
    // nothing. Under them: how the probabilities were made from the outputs.
    QLabel *resultWarningLabel() const { return m_resultWarning; }
    QLabel *probabilityRuleLabel() const { return m_rule; }
    QPushButton *browseButton() const { return m_browse; }
    QPushButton *applyButton() const { return m_apply; }
    // What the input must be where that is not plain numbers (an Embedding's integer token ids).
    QLabel *inputNote() const { return m_inputNote; }

    // Loads an image for a convolutional model: resized to the input size, scaled to [0, 1],
    // channels first. False with the reason in `error` when it cannot be read or used.
    bool loadImage(const QString &path, QString *error = nullptr);
    // The results as text and as the JSON `ckpt predict --json` prints.
    QString resultText() const;
    QString resultJson() const;
    // Devices known so far (CPU until the compute module has listed the others).
    const std::vector<DeviceInfo> &devices() const { return m_devices; }

public Q_SLOTS:
    // Resolves the architecture from the controls (format layer only: no LibTorch).
    void applyArchitecture();
    // Runs the current input on the chosen device (also Ctrl+Enter).
    void run();
    void fillZeros();
    // Random values for the form: around the package's mean and std when it has them; indices in
    // [0, num_embeddings) when the model starts with an Embedding.
    void fillRandom();
    // Copies row `row` (0-based) of the batch into the form.
    void fillFromBatchRow(int row);
    void copyText() const;
    void copyJson() const;

Q_SIGNALS:
    // A run ended (ok false: runError() says why).
    void finished(bool ok);
    // The compute module listed its devices.
    void devicesListed();

protected:
    // Devices are listed when the pane is first shown: asking LibTorch loads it (about 0.7 s), which
    // must not hold up a document's first picture.
    void showEvent(QShowEvent *event) override;
    // A theme change recolours the chart (QChart draws in its own light theme otherwise).
    void changeEvent(QEvent *event) override;

private:
    struct Prepared;
    std::optional<PredictionInput> gatherInput(QString *error) const;
    std::vector<std::int64_t> sampleShape() const;
    // The sample shape the pane proposes for the architecture: its input shape, with the size the
    // package's stated picture steps give where the layers take any size.
    std::vector<std::int64_t> proposedSampleShape() const;
    void rebuildForm();
    // Reads the kept outputs as the probabilities switch says (no run).
    void rereadOutputs();
    void showResult();
    void showChart(int sample);
    void showEmptyChart();
    void updateDeviceToolTip();
    void styleChart(QChart *chart) const;
    void listDevices();
    void updatePrecisions();
    void setStatus(const QString &text, bool error);
    // Enables and shows the architecture fields the chosen Source uses, hides the others.
    void updateSourceFields();

    std::shared_ptr<const Document> m_doc;
    std::optional<Architecture> m_arch;
    QString m_archError;
    Preprocessing m_pre;
    std::vector<std::string> m_classes;
    std::vector<std::string> m_features;
    std::vector<DeviceInfo> m_devices;
    bool m_devicesRequested = false;
    void requestDevices();
    std::shared_ptr<Predictor> m_predictor;  // built for m_arch on first run; dropped when it changes
    std::optional<PredictionResult> m_result;
    std::vector<std::int64_t> m_resultInputShape;
    Architecture::Output m_resultOutput = Architecture::Output::Logits;  // the last layer of the model that ran
    std::vector<std::string> m_notes;
    std::vector<std::string> m_resultWarnings;  // the warnings of the architecture that ran
    QString m_runError;
    bool m_running = false;
    quint64 m_generation = 0;
    quint64 m_archVersion = 0;
    std::optional<PredictionInput> m_image;

    QComboBox *m_archSource = nullptr;
    QComboBox *m_activation = nullptr;
    QLineEdit *m_scriptPath = nullptr;
    QPlainTextEdit *m_spec = nullptr;
    QPushButton *m_browse = nullptr;
    QPushButton *m_apply = nullptr;
    QFormLayout *m_archForm = nullptr;
    QHBoxLayout *m_pathRow = nullptr;
    QLabel *m_inputNote = nullptr;
    QLabel *m_archLabel = nullptr;
    QCheckBox *m_normalize = nullptr;
    QLabel *m_preLabel = nullptr;
    QLineEdit *m_shape = nullptr;
    QTabWidget *m_inputTabs = nullptr;
    QTableWidget *m_form = nullptr;
    QPlainTextEdit *m_batch = nullptr;
    QSpinBox *m_batchRow = nullptr;
    QLabel *m_imagePreview = nullptr;
    QComboBox *m_device = nullptr;
    QComboBox *m_precision = nullptr;  // float32, float16, bfloat16: those the device runs enabled
    QComboBox *m_probabilities = nullptr;
    QPushButton *m_run = nullptr;
    QTableWidget *m_results = nullptr;
    QChartView *m_chart = nullptr;
    QLabel *m_status = nullptr;
    QLabel *m_resultWarning = nullptr;
    QLabel *m_rule = nullptr;
};

} // namespace ckpt
